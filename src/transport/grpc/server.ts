/**
 * The gRPC front door: a grpc-js server carrying FirewallService, the
 * standard health service and server reflection (so `buf curl`, grpcurl and
 * other stock clients work without the .proto). The factory does not bind:
 * the entry point binds (127.0.0.1 by default), tests bind 127.0.0.1:0.
 *
 * Authentication: with `requireAuth`, every FirewallService call needs
 * `authorization: Bearer TOKEN` metadata; reads and Watch need read scope,
 * everything else write scope. Health and reflection are open. Neither tokens
 * nor metadata are ever logged: a log line names the method, the status, the
 * time taken and the token's configured name. Two or more `authorization`
 * values are refused (UNAUTHENTICATED), like two Authorization headers on REST.
 *
 * Connections are bounded like REST's (connection-guard.ts): request, header and
 * idle timeouts, a connection cap, and a message size limit whose refusal names
 * the limit and `--max-body-bytes`.
 */
import { type DescFile, toBinary } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { DomainError } from '../../domain/errors.js';
import { file_google_rpc_error_details } from '../../gen/google/rpc/error_details_pb.js';
import { file_google_rpc_status } from '../../gen/google/rpc/status_pb.js';
import { file_grpc_health_v1_health, Health } from '../../gen/grpc/health/v1/health_pb.js';
import {
  FirewallService as FirewallServiceDesc,
  file_portcullis_v1_firewall_service,
} from '../../gen/portcullis/v1/firewall_service_pb.js';
import type { Metrics } from '../../observe/metrics.js';
import type { FirewallApi } from '../../service/api.js';
import { IdempotencyStore } from '../../service/idempotency.js';
import { Authenticator, certificateRefusal, type Scope } from '../auth.js';
import {
  type ConnectionLimits,
  checkConnectionLimits,
  DEFAULT_CONNECTION_LIMITS,
} from '../connection-limits.js';
import type { DaemonApi } from '../daemon-api.js';
import { duplicateAuthorization } from '../errors.js';
import { type CallContext, implement, serviceDefinition } from './adapter.js';
import { guardConnections } from './connection-guard.js';
import { daemonHandlers } from './daemon-handlers.js';
import { firewallHandlers, type StoredOutcome } from './handlers.js';
import { healthHandlers } from './health.js';
import { AuthError, errorStatus } from './status.js';

export interface GrpcServerOptions {
  readonly service: FirewallApi;
  readonly auth: Authenticator;
  /** Require a bearer token on FirewallService calls (TCP listeners). */
  readonly requireAuth: boolean;
  /**
   * One line per call (method, status, duration, caller name; with its fields: requestId,
   * method, code, ms, caller) and per internal error.
   */
  readonly logger?: (line: string, fields?: Readonly<Record<string, unknown>>) => void;
  /** Saving the rules files and reading the audit log (Save, ListAuditEntries). @default none */
  readonly daemon?: DaemonApi;
  /**
   * Where idempotency keys are remembered (share one with REST to bound memory in one place).
   * @default a new store with its defaults
   */
  readonly idempotency?: IdempotencyStore<StoredOutcome>;
  /**
   * Largest request message, in bytes; larger ones get RESOURCE_EXHAUSTED naming the limit.
   * @default 1048576 (1 MiB)
   */
  readonly maxMessageBytes?: number;
  /** Timeouts and the connection cap. @default DEFAULT_CONNECTION_LIMITS */
  readonly limits?: ConnectionLimits;
  /** Further grpc-js server options (keepalive, ...). */
  readonly serverOptions?: grpc.ServerOptions;
  /** Prometheus metrics (observe/metrics.ts): every call is counted by method and status. @default none */
  readonly metrics?: Pick<Metrics, 'request'>;
}

/** The FirewallService methods a read-scope token may call; all others need write. */
export const READ_METHODS: ReadonlySet<string> = new Set([
  'GetRuleset',
  'GetTable',
  'GetChain',
  'GetRule',
  'ListChains',
  'GetStatus',
  'Verify',
  'Watch',
  'Trace',
  'Lint',
  'ListAuditEntries',
  'ListConfirmations',
]);

export function requiredScope(methodName: string): Scope {
  return READ_METHODS.has(methodName) ? 'read' : 'write';
}

/** The file descriptors served by reflection: ours, the vendored ones, and everything they import. */
export function reflectionFiles(): DescFile[] {
  const seen = new Map<string, DescFile>();
  const visit = (f: DescFile) => {
    if (seen.has(f.name)) return;
    seen.set(f.name, f);
    for (const d of f.dependencies) visit(d);
  };
  for (const f of [
    file_portcullis_v1_firewall_service,
    file_grpc_health_v1_health,
    file_google_rpc_status,
    file_google_rpc_error_details,
  ]) {
    visit(f);
  }
  return [...seen.values()];
}

function reflectionService(): ReflectionService {
  const fileDescriptorProtos = reflectionFiles().map((f) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
  );
  // @grpc/reflection reads only `fileDescriptorProtos` of a proto-loader package definition.
  const definition = {
    'portcullis.v1': { format: 'Protocol Buffer 3 FileDescriptorProto', type: {}, fileDescriptorProtos },
  };
  return new ReflectionService(definition as never);
}

export function createGrpcServer(options: GrpcServerOptions): grpc.Server {
  const { service, auth, requireAuth, logger } = options;
  if (!service || typeof service.apply !== 'function')
    throw new TypeError('Expected `service` to be a FirewallApi');
  if (!(auth instanceof Authenticator)) throw new TypeError('Expected `auth` to be an Authenticator');
  if (typeof requireAuth !== 'boolean') throw new TypeError('Expected `requireAuth` to be a boolean');
  const idempotency = options.idempotency ?? new IdempotencyStore<StoredOutcome>();
  const limits = options.limits ?? DEFAULT_CONNECTION_LIMITS;
  checkConnectionLimits(limits);
  const maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1)
    throw new TypeError(
      `Expected \`maxMessageBytes\` to be a whole number from 1, got ${String(maxMessageBytes)}`,
    );
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
    ...options.serverOptions,
  });
  guardConnections(server, { limits, maxMessageBytes });

  const toStatus = (error: unknown, context: CallContext) => {
    const status = errorStatus(error);
    if (status.code === grpc.status.INTERNAL && logger) {
      const e = DomainError.from(error);
      const cause = e.cause instanceof Error ? e.cause.message : e.message;
      logger(`grpc ${context.method.name}: internal error: ${cause}`);
    }
    return status;
  };
  const onEnd = (context: CallContext, code: grpc.status, ms: number) => {
    options.metrics?.request('grpc', context.method.name, grpc.status[code] ?? String(code), ms / 1000);
    logger?.(
      `grpc ${context.method.parent.typeName}/${context.method.name} ${grpc.status[code] ?? code} ${ms.toFixed(1)}ms${
        context.principal ? ` caller=${context.principal}` : ''
      }`,
      {
        requestId: context.requestId,
        method: `${context.method.parent.typeName}/${context.method.name}`,
        code: grpc.status[code] ?? String(code),
        ms: Math.round(ms * 10) / 10,
        caller: context.principal ?? '-',
      },
    );
  };
  const authenticate = (context: CallContext) => {
    if (!requireAuth) {
      context.principal = 'local';
      context.identity = 'local';
      return;
    }
    const values = context.metadata.get('authorization');
    if (values.length > 1) {
      throw new AuthError(
        'unauthenticated',
        duplicateAuthorization(values.length, 'authorization metadata values'),
      );
    }
    const header = typeof values[0] === 'string' ? values[0] : undefined;
    const result = auth.authenticate({ authorization: header, certificate: context.certificate });
    if (!result.ok) {
      throw new AuthError(
        'unauthenticated',
        certificateRefusal(result, 'call') ??
          (result.reason === 'missing'
            ? context.certificate === undefined && auth.certificates > 0
              ? 'this call needs a bearer token (send metadata "authorization: Bearer TOKEN") or a client certificate signed by the configured client CA'
              : 'this call needs a bearer token: send metadata "authorization: Bearer TOKEN"'
            : 'the bearer token is not valid'),
      );
    }
    context.principal = result.name;
    context.identity = result.identity;
    const needed = requiredScope(context.method.name);
    if (!Authenticator.allows(result.scope, needed)) {
      throw new AuthError(
        'permission_denied',
        header === undefined
          ? `${context.method.name} needs ${needed} scope; the client certificate ${result.name} has ${result.scope} scope`
          : `${context.method.name} needs a token with ${needed} scope; this token has ${result.scope} scope`,
      );
    }
  };

  server.addService(
    serviceDefinition(FirewallServiceDesc),
    implement(
      FirewallServiceDesc,
      { ...firewallHandlers({ service, idempotency }), ...daemonHandlers(options.daemon) },
      {
        before: authenticate,
        toStatus,
        onEnd,
      },
    ),
  );
  server.addService(
    serviceDefinition(Health),
    implement(
      Health,
      healthHandlers(() => service.ready),
      { toStatus },
    ),
  );
  reflectionService().addToServer(server);
  return server;
}
