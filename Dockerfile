# A small debug image for k8sdiag: Node on Alpine (musl), the one-file bundle, and the tools its live readers use.
#   docker build -t k8sdiag .          (after `npm ci && npm run build`: the bundle is dist/k8sdiag.mjs)
FROM node:22.12.0-alpine3.20

# conntrack -S, iptables-save/ip6tables-save with both backends (kube-proxy's iptables-wrapper picks the one that
# has rules; `k8sdiag svc --live` reads both and keeps the one with KUBE- chains), nft, ipvsadm, ip, and ethtool
# (`doctor` reads the cloud interface's allowance counters with ethtool -S), tcpdump (`watch` captures with it), and
# bpftrace (`drops` traces the kernel's skb:kfree_skb with it).
RUN apk add --no-cache conntrack-tools iptables iptables-legacy nftables ipvsadm iproute2 ethtool tcpdump bpftrace

# The bundle keeps its .mjs name (an ES module); the command is a symlink to it, which node resolves.
COPY dist/k8sdiag.mjs /usr/local/lib/k8sdiag/k8sdiag.mjs
RUN chmod 0755 /usr/local/lib/k8sdiag/k8sdiag.mjs && ln -s /usr/local/lib/k8sdiag/k8sdiag.mjs /usr/local/bin/k8sdiag

# Root, as kubectl debug runs it: the node recipes' capabilities (--profile=netadmin adds NET_ADMIN and NET_RAW)
# apply only to uid 0, which no kubectl before 1.31 can set (--custom). Where a non-root user is required (Pod
# Security "restricted"), the Job, the CronJob and docs/fleet.md's restricted recipe set runAsUser: 65532.
USER 0:0
ENTRYPOINT ["k8sdiag"]
CMD ["--help"]
