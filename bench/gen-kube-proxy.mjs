// A kube-proxy iptables-mode rule set for S services with E endpoints each, in
// the order and shape kube-proxy writes (iptables-restore input).
export function generateRules(services, endpoints) {
  const nat = [':KUBE-SERVICES - [0:0]', ':KUBE-NODEPORTS - [0:0]', ':KUBE-MARK-MASQ - [0:0]', ':KUBE-POSTROUTING - [0:0]'];
  const rules = [];
  const hash = (prefix, n) => `${prefix}${n.toString(36).toUpperCase().padStart(16 - prefix.length, '0')}`;
  let sep = 0;
  for (let s = 0; s < services; s++) {
    const svc = hash('S', s);
    const ident = `ns${s % 50}/svc${s}:http`;
    const ip = `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`;
    nat.push(`:KUBE-SVC-${svc} - [0:0]`);
    rules.push(`-A KUBE-SERVICES -m comment --comment "${ident} cluster IP" -m tcp -p tcp -d ${ip} --dport 80 -j KUBE-SVC-${svc}`);
    rules.push(`-A KUBE-SVC-${svc} -m comment --comment "${ident} cluster IP" -m tcp -p tcp -d ${ip} --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ`);
    for (let e = 0; e < endpoints; e++) {
      const id = hash('E', sep++);
      const dst = `10.${244 + (sep >> 16)}.${(sep >> 8) & 255}.${sep & 255}:8080`;
      nat.push(`:KUBE-SEP-${id} - [0:0]`);
      const p = e < endpoints - 1 ? ` -m statistic --mode random --probability ${(1 / (endpoints - e)).toFixed(10)}` : '';
      rules.push(`-A KUBE-SVC-${svc} -m comment --comment "${ident} -> ${dst}"${p} -j KUBE-SEP-${id}`);
      rules.push(`-A KUBE-SEP-${id} -m comment --comment ${ident} -s ${dst.split(':')[0]} -j KUBE-MARK-MASQ`);
      rules.push(`-A KUBE-SEP-${id} -m comment --comment ${ident} -m tcp -p tcp -j DNAT --to-destination ${dst}`);
    }
  }
  rules.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  rules.push('-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000');
  return `*nat\n${nat.join('\n')}\n${rules.join('\n')}\nCOMMIT\n`;
}
