import { UserError } from '../errors.js';

/** Turn a socket error into one clear line with a hint. */
export function socketError(err: unknown, target: string): UserError {
  const e = err as NodeJS.ErrnoException;
  switch (e.code) {
    case 'EMFILE':
    case 'ENFILE':
      return new UserError(
        `out of file descriptors opening UDP sockets to ${target} (${e.code})`,
        'lower -c, or raise the limit: ulimit -n 65536',
      );
    case 'EACCES':
    case 'EPERM':
      return new UserError(`not allowed to open a socket to ${target} (${e.code})`, 'a firewall rule or seccomp profile may forbid it');
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return new UserError(`cannot reach ${target}: address family not available here (${e.code})`, 'is IPv6 enabled in this network namespace?');
    case 'ENETUNREACH':
    case 'EHOSTUNREACH':
      return new UserError(`no route to ${target} (${e.code})`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`cannot resolve the server name in ${target}`, 'give --server an IP address');
    default:
      return new UserError(`socket error towards ${target}: ${e.message}`);
  }
}

/** Why a UDP socket could not be opened (out of descriptors, ...) or connected (no route, ...): one line either way. */
export function openError(err: unknown, target: string, connecting: boolean): UserError {
  const code = (err as NodeJS.ErrnoException).code;
  return connecting && code !== 'EMFILE' && code !== 'ENFILE' ? connectError(err, target) : socketError(err, target);
}

/** A failed connect() of a UDP socket (no packet is sent by it): one line naming the server and the reason. */
export function connectError(err: unknown, target: string): UserError {
  const e = err as NodeJS.ErrnoException;
  const code = e.code ?? 'error';
  switch (code) {
    case 'ENETUNREACH':
      return new UserError(`cannot reach ${target}: no route to that network (ENETUNREACH)`, 'check `ip route` in this network namespace; a pod needs a default route');
    case 'EHOSTUNREACH':
      return new UserError(`cannot reach ${target}: host unreachable (EHOSTUNREACH)`);
    case 'EACCES':
    case 'EPERM':
      return new UserError(`not allowed to send to ${target} (${code})`, 'a broadcast address needs SO_BROADCAST; otherwise a firewall or seccomp rule forbids it');
    case 'EADDRNOTAVAIL':
    case 'EAFNOSUPPORT':
      return new UserError(`cannot reach ${target}: no local address of that family (${code})`, 'is IPv6 enabled in this network namespace?');
    case 'EINVAL':
    case 'ENODEV':
    case 'ENXIO':
      return new UserError(`cannot use ${target} as a server address (${code})`, 'a link-local IPv6 address needs an existing interface: fe80::1%eth0');
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`cannot resolve the server name in ${target}`, 'give --server an IP address');
    default:
      return new UserError(`cannot connect a UDP socket to ${target}: ${e.message}`);
  }
}
