/**
 * The command lines the kernel parity test (kernel.test.ts) runs twice: through iptables /
 * ip6tables / iptables-save / iptables-restore in one network namespace, and through
 * portcullis against a service managing another. Every iptables verb, both seed articles as
 * they type them, bundled options, a rule word that looks like an option, a comment with
 * spaces and quotes, nat, ipv6, save and restore, and failures (compared by exit status).
 * `output: true`: the printed text must be the same byte for byte.
 */

export interface Step {
  /** portcullis' argv; the iptables argv is derived from it (reference() in kernel.test.ts). */
  readonly argv: readonly string[];
  readonly stdin?: string;
  readonly output?: boolean;
}

/** The hardening article's end state, as an iptables-save file. */
export const HARDENED = `*filter
:INPUT DROP [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:LOG_AND_DROP - [0:0]
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -m comment --comment "kept by \\"restore\\"" -j LOG_AND_DROP
-A LOG_AND_DROP -j LOG --log-prefix "iptables deny: " --log-level 7
-A LOG_AND_DROP -j DROP
COMMIT
`;

/** Added on top with --noflush. */
export const EXTRA = `*filter
:EXTRA - [0:0]
-A EXTRA -p udp -m udp --dport 53 -j ACCEPT
-I INPUT 2 -j EXTRA
COMMIT
`;

export const STEPS: readonly Step[] = [
  // The secure-server article, as typed there (with portcullis in place of iptables).
  { argv: ['-L'], output: true },
  {
    argv: ['-A', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '22', '-m', 'state', '--state', 'NEW'].concat([
      '-m',
      'recent',
      '--set',
      '--name',
      'DEFAULT',
      '--rsource',
    ]),
  },
  { argv: ['-N', 'LOG_AND_DROP'] },
  {
    argv: ['-A', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '22', '-m', 'state', '--state', 'NEW']
      .concat(['-m', 'recent', '--update', '--seconds', '60', '--hitcount', '4', '--name', 'DEFAULT'])
      .concat(['--rsource', '-j', 'LOG_AND_DROP']),
  },
  { argv: ['-A', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '22', '-j', 'ACCEPT'] },
  { argv: ['-A', 'LOG_AND_DROP', '-j', 'LOG', '--log-prefix', 'iptables deny: ', '--log-level', '7'] },
  { argv: ['-A', 'LOG_AND_DROP', '-j', 'DROP'] },
  { argv: ['-L', '-n'], output: true },
  { argv: ['-L'], output: true },
  { argv: ['-S'], output: true },
  { argv: ['-L', '-n', '-v'], output: true },
  { argv: ['-L', 'INPUT', '-n', '-v', '-x', '--line-numbers'], output: true },
  { argv: ['-nvL', 'LOG_AND_DROP'], output: true },
  { argv: ['-C', 'INPUT', '-p', 'tcp', '-m', 'tcp', '--dport', '22', '-j', 'ACCEPT'] },
  { argv: ['-C', 'INPUT', '-p', 'tcp', '--dport', '23', '-j', 'ACCEPT'] },
  // The hardening article (with the loopback rule first, so the policy cannot cut local traffic).
  { argv: ['-I', 'INPUT', '-i', 'lo', '-j', 'ACCEPT'] },
  { argv: ['-A', 'INPUT', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'] },
  { argv: ['-P', 'INPUT', 'DROP'] },
  { argv: ['-L', 'INPUT', '--line-numbers', '-n'], output: true },
  { argv: ['-S', 'INPUT'], output: true },
  // Every other verb, and words a shell has already split.
  {
    argv: ['-I', 'INPUT', '3', '-s', '198.51.100.0/24', '-p', 'tcp', '--dport', '443']
      .concat(['-m', 'comment', '--comment', `it's a "quoted" \\ comment`, '-j', 'REJECT'])
      .concat(['--reject-with', 'tcp-reset']),
  },
  {
    argv: [
      '-A',
      'INPUT',
      '!',
      '-s',
      '192.0.2.0/24',
      '-p',
      'udp',
      '-m',
      'multiport',
      '--dports',
      '53,123',
      '-j',
      'ACCEPT',
    ],
  },
  {
    argv: [
      '-A',
      'INPUT',
      '-p',
      'icmp',
      '--icmp-type',
      'echo-request',
      '-m',
      'limit',
      '--limit',
      '5/min',
    ].concat(['--limit-burst', '3', '-j', 'ACCEPT']),
  },
  { argv: ['-A', 'INPUT', '-m', 'comment', '--comment', '-n', '-j', 'DROP'] },
  { argv: ['-L', '-n'], output: true },
  { argv: ['-S'], output: true },
  { argv: ['-R', 'INPUT', '3', '-s', '198.51.100.0/24', '-p', 'tcp', '--dport', '8443', '-j', 'DROP'] },
  { argv: ['-D', 'INPUT', '-m', 'comment', '--comment', '-n', '-j', 'DROP'] },
  { argv: ['-D', 'INPUT', '2'] },
  { argv: ['-S'], output: true },
  { argv: ['-E', 'LOG_AND_DROP', 'SSH_BLOCK'] },
  { argv: ['-L', '-n'], output: true },
  { argv: ['-N', 'SCRATCH'] },
  { argv: ['-A', 'SCRATCH', '-j', 'RETURN'] },
  { argv: ['-A', 'FORWARD', '-f', '-o', 'eth0', '-g', 'SCRATCH'] },
  { argv: ['-L', 'FORWARD', '-n', '-v'], output: true },
  { argv: ['-L', 'SCRATCH', '-n'], output: true },
  { argv: ['-F', 'SCRATCH'] },
  { argv: ['-D', 'FORWARD', '1'] },
  { argv: ['-X', 'SCRATCH'] },
  { argv: ['-Z', 'INPUT'] },
  { argv: ['-Z'] },
  { argv: ['-L', 'INPUT', '2', '-n'], output: true },
  { argv: ['-S', 'INPUT', '2'], output: true },
  { argv: ['-S', '-v'], output: true },
  // Failures: the same exit status as iptables.
  { argv: ['-A', 'NOPE', '-j', 'ACCEPT'] },
  { argv: ['-A', 'INPUT', '-p', 'tcp', '--bogus', '1'] },
  { argv: ['-D', 'INPUT', '99'] },
  { argv: ['-N', 'SSH_BLOCK'] },
  { argv: ['-C', 'NOPE', '-j', 'ACCEPT'] },
  // nat.
  { argv: ['-t', 'nat', '-A', 'POSTROUTING', '-s', '192.0.2.0/24', '-o', 'eth0', '-j', 'MASQUERADE'] },
  {
    argv: [
      '-t',
      'nat',
      '-A',
      'PREROUTING',
      '-p',
      'tcp',
      '--dport',
      '8080',
      '-j',
      'REDIRECT',
      '--to-ports',
      '80',
    ],
  },
  { argv: ['-t', 'nat', '-L', '-n', '-v'], output: true },
  { argv: ['-t', 'nat', '-S'], output: true },
  // ipv6.
  {
    argv: [
      '-6',
      '-A',
      'INPUT',
      '-s',
      '2001:db8::/32',
      '-p',
      'ipv6-icmp',
      '--icmpv6-type',
      'echo-request',
      '-j',
      'ACCEPT',
    ],
  },
  { argv: ['-6', '-A', 'INPUT', '-p', 'tcp', '--dport', '22', '-j', 'ACCEPT'] },
  { argv: ['-6', '-P', 'INPUT', 'DROP'] },
  { argv: ['-6', '-L', '-n', '-v'], output: true },
  { argv: ['-6', '-S'], output: true },
  // save and restore.
  { argv: ['save'], output: true },
  { argv: ['-6', 'save'], output: true },
  { argv: ['restore'], stdin: HARDENED },
  { argv: ['-S'], output: true },
  { argv: ['restore', '--noflush'], stdin: EXTRA },
  { argv: ['restore', '--test'], stdin: HARDENED },
  { argv: ['save', '-t', 'filter'], output: true },
  { argv: ['-F'] },
  { argv: ['-X'] },
  { argv: ['-P', 'INPUT', 'ACCEPT'] },
  { argv: ['-L', '-n'], output: true },
];
