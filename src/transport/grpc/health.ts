/**
 * The standard gRPC health service (grpc.health.v1, vendored health.proto),
 * served through the same adapter as FirewallService. The server as a whole
 * ("") and "portcullis.v1.FirewallService" are SERVING while the firewall
 * service is ready (kernel read, not closing), NOT_SERVING otherwise.
 */
import { DomainError } from '../../domain/errors.js';
import {
  type Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from '../../gen/grpc/health/v1/health_pb.js';
import { FirewallService as FirewallServiceDesc } from '../../gen/portcullis/v1/firewall_service_pb.js';
import type { ServiceHandlers } from './adapter.js';

/** How often Watch re-checks readiness (ms). */
const WATCH_INTERVAL_MS = 500;

export function healthHandlers(isReady: () => boolean): ServiceHandlers<typeof Health> {
  const names = ['', FirewallServiceDesc.typeName];
  const statusOf = (name: string): ServingStatus | undefined => {
    if (!names.includes(name)) return undefined;
    return isReady() ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
  };
  return {
    check(req) {
      const status = statusOf(req.service);
      if (status === undefined)
        throw new DomainError('not_found', `unknown service ${req.service.slice(0, 100)}`, {
          field: 'service',
        });
      return { status };
    },
    list() {
      return {
        statuses: Object.fromEntries(names.map((n) => [n, { status: statusOf(n) as ServingStatus }])),
      };
    },
    async watch(req, send, context) {
      let last: ServingStatus | undefined;
      const tick = () => {
        const status = statusOf(req.service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (status !== last) send({ status });
        last = status;
      };
      tick();
      await new Promise<void>((resolve) => {
        const timer = setInterval(tick, WATCH_INTERVAL_MS);
        const stop = () => {
          clearInterval(timer);
          resolve();
        };
        if (context.signal.aborted) stop();
        else context.signal.addEventListener('abort', stop, { once: true });
      });
    },
  };
}
