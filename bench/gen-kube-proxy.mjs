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

// The same Services in kube-proxy's nftables mode, as `nft list ruleset` prints its `kube-proxy` table.
export function generateNftRuleset(services, endpoints) {
  const hash = (prefix, n) => `${prefix}${n.toString(36).toUpperCase().padStart(8 - prefix.length, '0')}`;
  const ip = (s) => `10.${96 + (s >> 16)}.${(s >> 8) & 255}.${s & 255}`;
  const out = ['table ip kube-proxy {', '\tcomment "rules for kube-proxy"', '\tset cluster-ips {', '\t\ttype ipv4_addr', '\t\tcomment "Active ClusterIPs"'];
  const list = (items) => items.map((e, i) => (i === 0 ? `\t\telements = { ${e}` : `\t\t\t     ${e}`) + (i === items.length - 1 ? ' }' : ','));
  const ips = [];
  const vmap = [];
  for (let s = 0; s < services; s++) {
    ips.push(ip(s));
    vmap.push(`${ip(s)} . tcp . 80 : goto service-${hash('S', s)}-ns${s % 50}/svc${s}/tcp/http`);
  }
  const add = (lines) => {
    for (const l of lines) out.push(l);
  };
  add(list(ips));
  add(['\t}', '', '\tmap service-ips {', '\t\ttype ipv4_addr . inet_proto . inet_service : verdict', '\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"']);
  add(list(vmap));
  add(['\t}', '']);
  out.push('\tchain mark-for-masquerade {', '\t\tmeta mark set meta mark | 0x00004000', '\t}', '', '\tchain services {', '\t\tip daddr . meta l4proto . th dport vmap @service-ips', '\t\tip daddr @cluster-ips reject', '\t}', '');
  let sep = 0;
  for (let s = 0; s < services; s++) {
    const svc = `${hash('S', s)}-ns${s % 50}/svc${s}/tcp/http`;
    const eps = [];
    for (let e = 0; e < endpoints; e++) {
      sep++;
      const addr = `10.${244 + (sep >> 16)}.${(sep >> 8) & 255}.${sep & 255}`;
      eps.push({ chain: `endpoint-${hash('E', sep)}-ns${s % 50}/svc${s}/tcp/http__${addr}/8080`, addr });
    }
    out.push(`\tchain service-${svc} {`, `\t\tip daddr ${ip(s)} ip saddr != 10.244.0.0/16 jump mark-for-masquerade`);
    out.push(`\t\tnumgen random mod ${endpoints} vmap { ${eps.map((e, i) => `${i} : goto ${e.chain}`).join(', ')} }`, '\t}', '');
    for (const e of eps) out.push(`\tchain ${e.chain} {`, `\t\tip saddr ${e.addr} jump mark-for-masquerade`, `\t\tmeta l4proto tcp dnat to ${e.addr}:8080`, '\t}', '');
  }
  out.push('}');
  return `${out.join('\n')}\n`;
}
