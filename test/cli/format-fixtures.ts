/**
 * Answers of a real Portcullis service (captured from the API of this tree: the SSH-limiting
 * rules of the secure-server article plus a duplicate rule, a jump to an empty chain and an
 * ipv6 INPUT DROP policy), for the renderer tests in format-render.test.ts.
 */
import type { components } from '../../src/gen/openapi.js';

type Schemas = components['schemas'];

export const TRACE_UNCERTAIN: Schemas['TraceReport'] = {
  revision: 5,
  proposed: false,
  definite: false,
  possibleVerdicts: ['ACCEPT', 'DROP'],
  managed: {
    family: 'ipv4',
    hook: 'INPUT',
    definite: false,
    possibleVerdicts: ['ACCEPT', 'DROP'],
    outcomes: [
      {
        verdict: 'ACCEPT',
        decidedBy: {
          kind: 'rule',
          table: 'filter',
          chain: 'INPUT',
          position: 3,
          ruleId: '6a8bce6b9ec28323',
          ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
          matched: 'yes',
        },
        tables: [
          {
            table: 'filter',
            verdict: 'ACCEPT',
            by: {
              kind: 'rule',
              table: 'filter',
              chain: 'INPUT',
              position: 3,
              ruleId: '6a8bce6b9ec28323',
              ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
              matched: 'yes',
            },
          },
        ],
        path: [
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 1,
            ruleId: '584dcf518d6edf18',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
            matched: 'yes',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 2,
            ruleId: '0775d1d60dbeaf89',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
            matched: 'maybe',
            assumed: 'no',
            reasons: ['state of recent list "DEFAULT" is not given (describe it in the packet\'s "recent")'],
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 3,
            ruleId: '6a8bce6b9ec28323',
            ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
            matched: 'yes',
          },
        ],
        assumptions: [
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 2,
            ruleId: '0775d1d60dbeaf89',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
            matched: 'maybe',
            assumed: 'no',
            reasons: ['state of recent list "DEFAULT" is not given (describe it in the packet\'s "recent")'],
          },
        ],
        nat: [],
        mark: '0x0',
      },
      {
        verdict: 'DROP',
        decidedBy: {
          kind: 'rule',
          table: 'filter',
          chain: 'LOG_AND_DROP',
          position: 2,
          ruleId: '30481eb1349965f8',
          ruleText: '-j DROP',
          matched: 'yes',
        },
        tables: [
          {
            table: 'filter',
            verdict: 'DROP',
            by: {
              kind: 'rule',
              table: 'filter',
              chain: 'LOG_AND_DROP',
              position: 2,
              ruleId: '30481eb1349965f8',
              ruleText: '-j DROP',
              matched: 'yes',
            },
          },
        ],
        path: [
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 1,
            ruleId: '584dcf518d6edf18',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
            matched: 'yes',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 2,
            ruleId: '0775d1d60dbeaf89',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
            matched: 'maybe',
            assumed: 'yes',
            reasons: ['state of recent list "DEFAULT" is not given (describe it in the packet\'s "recent")'],
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'LOG_AND_DROP',
            position: 1,
            ruleId: 'cf13062b51fa8b90',
            ruleText: '-j LOG --log-prefix "x "',
            matched: 'yes',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'LOG_AND_DROP',
            position: 2,
            ruleId: '30481eb1349965f8',
            ruleText: '-j DROP',
            matched: 'yes',
          },
        ],
        assumptions: [
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 2,
            ruleId: '0775d1d60dbeaf89',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
            matched: 'maybe',
            assumed: 'yes',
            reasons: ['state of recent list "DEFAULT" is not given (describe it in the packet\'s "recent")'],
          },
        ],
        nat: [],
        mark: '0x0',
      },
    ],
    uncertain: [
      {
        table: 'filter',
        chain: 'INPUT',
        position: 2,
        ruleId: '0775d1d60dbeaf89',
        ruleText:
          '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
        reasons: ['state of recent list "DEFAULT" is not given (describe it in the packet\'s "recent")'],
      },
    ],
    truncated: false,
  },
};

export const TRACE_DEFINITE: Schemas['TraceReport'] = {
  revision: 5,
  proposed: false,
  definite: true,
  verdict: 'ACCEPT',
  possibleVerdicts: ['ACCEPT'],
  managed: {
    family: 'ipv4',
    hook: 'INPUT',
    definite: true,
    verdict: 'ACCEPT',
    possibleVerdicts: ['ACCEPT'],
    outcomes: [
      {
        verdict: 'ACCEPT',
        decidedBy: {
          kind: 'policy',
          table: 'filter',
          chain: 'INPUT',
          policy: 'ACCEPT',
        },
        tables: [
          {
            table: 'filter',
            verdict: 'ACCEPT',
            by: {
              kind: 'policy',
              table: 'filter',
              chain: 'INPUT',
              policy: 'ACCEPT',
            },
          },
        ],
        path: [
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 1,
            ruleId: '584dcf518d6edf18',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --set --name DEFAULT --mask 255.255.255.255 --rsource',
            matched: 'no',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 2,
            ruleId: '0775d1d60dbeaf89',
            ruleText:
              '-p tcp -m tcp --dport 22 -m state --state NEW -m recent --update --seconds 60 --hitcount 4 --name DEFAULT --mask 255.255.255.255 --rsource -j LOG_AND_DROP',
            matched: 'no',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 3,
            ruleId: '6a8bce6b9ec28323',
            ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
            matched: 'no',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 4,
            ruleId: '3cd8ed3c9bd3bb0c',
            ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
            matched: 'no',
          },
          {
            kind: 'rule',
            table: 'filter',
            chain: 'INPUT',
            position: 5,
            ruleId: '4b41f52a8dd9cdba',
            ruleText: '-j EMPTY',
            matched: 'yes',
          },
          {
            kind: 'policy',
            table: 'filter',
            chain: 'INPUT',
            policy: 'ACCEPT',
          },
        ],
        assumptions: [],
        nat: [],
        mark: '0x0',
      },
    ],
    uncertain: [],
    truncated: false,
  },
};

export const LINT: Schemas['LintResult'] = {
  revision: 5,
  findings: [
    {
      family: 'ipv6',
      table: 'filter',
      chain: 'INPUT',
      code: 'input-drop-without-established',
      severity: 'error',
      rules: [],
      message:
        'INPUT drops by default but accepts no ESTABLISHED packets, so replies to connections this host opens are dropped (by the INPUT policy DROP).',
      suggestion: 'Add -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT near the top of INPUT.',
    },
    {
      family: 'ipv6',
      table: 'filter',
      chain: 'INPUT',
      code: 'ipv6-nd-blocked',
      severity: 'error',
      rules: [],
      message:
        'ICMPv6 router solicitation, router advertisement, neighbour solicitation, neighbour advertisement is dropped by the INPUT policy DROP, which cuts the host off its IPv6 neighbours.',
      suggestion:
        'Accept neighbour discovery before the drop: -A INPUT -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT, and the same for types 133, 134 and 136.',
    },
    {
      family: 'ipv4',
      table: 'filter',
      chain: 'INPUT',
      code: 'duplicate-rule',
      severity: 'warning',
      rules: [
        {
          table: 'filter',
          chain: 'INPUT',
          position: 4,
          ruleId: '3cd8ed3c9bd3bb0c',
          ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
        },
        {
          table: 'filter',
          chain: 'INPUT',
          position: 3,
          ruleId: '6a8bce6b9ec28323',
          ruleText: '-p tcp -m tcp --dport 22 -j ACCEPT',
        },
      ],
      message: 'Rule 4 of INPUT is an exact copy of rule 3.',
      suggestion: 'Delete rule 4 (id 3cd8ed3c9bd3bb0c).',
    },
    {
      family: 'ipv4',
      table: 'filter',
      chain: 'INPUT',
      rules: [
        {
          table: 'filter',
          chain: 'INPUT',
          position: 5,
          ruleId: '4b41f52a8dd9cdba',
          ruleText: '-j EMPTY',
        },
      ],
      code: 'jump-to-empty-chain',
      severity: 'warning',
      message: 'Rule 5 of INPUT jumps to EMPTY, which has no rules, so the jump does nothing.',
      suggestion: 'Add rules to EMPTY, or delete rule 5.',
    },
  ],
};

export const STATUS: Schemas['Status'] = {
  revision: 5,
  families: ['ipv4', 'ipv6'],
  backend: {
    backend: 'nf_tables',
    version: '1.8.9',
  },
  watch: 'nft-monitor',
  queueDepth: 0,
  batches: 7,
  ready: true,
  lastVerify: {
    time: '2026-11-29T08:17:19.379Z',
    consistent: true,
    differences: 0,
  },
};
