/**
 * Transaction operations the CLI sends, typed from the generated contract.
 *
 * openapi-typescript cannot express the contract's `RuleInput` (an if/then/else between a
 * spec and a typed rule: it comes out as `Record<string, never>`), so the operations that
 * carry a rule are declared here from the generated ones with that one field narrowed to
 * the spec form (`SpecRule`), the form every rule the CLI sends takes. The generated
 * `Operation` only fixes `op`, so these are assignable to it without a cast.
 */
import type { Schemas } from './api.js';

type SpecRule = Schemas['SpecRule'];

export type AppendOp = Omit<Schemas['AppendOp'], 'rule'> & { readonly rule: SpecRule };
export type InsertOp = Omit<Schemas['InsertOp'], 'rule'> & { readonly rule: SpecRule };
export type ReplaceOp = Omit<Schemas['ReplaceOp'], 'rule'> & { readonly rule: SpecRule };
export type DeleteOp = Omit<Schemas['DeleteOp'], 'target'> & {
  readonly target: { readonly rule: SpecRule } | { readonly position: number };
};
export type TableChain = Omit<Schemas['TableChainInput'], 'rules'> & { readonly rules: readonly SpecRule[] };
export type ReplaceTableOp = Omit<Schemas['ReplaceTableOp'], 'chains'> & {
  readonly chains: readonly TableChain[];
};

export type CliOperation =
  | AppendOp
  | InsertOp
  | ReplaceOp
  | DeleteOp
  | ReplaceTableOp
  | Schemas['CreateChainOp']
  | Schemas['DeleteChainOp']
  | Schemas['FlushChainOp']
  | Schemas['RenameChainOp']
  | Schemas['SetPolicyOp']
  | Schemas['ZeroCountersOp'];

/** The operations as the contract's `Operation` list (each fixes `op`, which is all it asks). */
export function asOperations(ops: readonly CliOperation[]): Schemas['Operation'][] {
  return ops.map((op): Schemas['Operation'] => op);
}
