// Alert lines shaped like wazuh-analysisd's alerts.json (WAZUH-PROTOCOL §7), for the alerts tests.

export interface AlertLineOptions {
  n: number;
  level?: number;
  ruleId?: string;
  agentId?: string;
  srcip?: string;
  dstuser?: string;
  srcuser?: string;
  /** Pad full_log to make a long line. */
  pad?: number;
}

export function alertObject(o: AlertLineOptions): Record<string, unknown> {
  const data: Record<string, string> = {};
  if (o.srcip !== undefined) data.srcip = o.srcip;
  if (o.dstuser !== undefined) data.dstuser = o.dstuser;
  if (o.srcuser !== undefined) data.srcuser = o.srcuser;
  return {
    timestamp: '2024-05-28T12:35:00.123+0000',
    rule: {
      level: o.level ?? 10, description: 'Login session opened.', id: o.ruleId ?? '5502',
      firedtimes: o.n, mail: false, groups: ['pam', 'syslog', 'authentication_success'],
      pci_dss: ['10.2.5'], gdpr: ['IV_32.2'],
    },
    agent: { id: o.agentId ?? '001', name: 'web-server-01', ip: '192.168.1.100' },
    manager: { name: 'wazuh-manager-01' },
    id: `1716899700.${1000 + o.n}`,
    full_log: `May 28 12:35:00 web-server-01 sshd[${o.n}]: pam_unix(sshd:session): session opened for user admin${'x'.repeat(o.pad ?? 0)}`,
    predecoder: { program_name: 'sshd', timestamp: 'May 28 12:35:00', hostname: 'web-server-01' },
    decoder: { parent: 'pam', name: 'pam' },
    data,
    location: '/var/log/auth.log',
  };
}

export function alertLine(o: AlertLineOptions): string {
  return JSON.stringify(alertObject(o));
}
