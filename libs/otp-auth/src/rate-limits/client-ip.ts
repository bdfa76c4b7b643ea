import type { IncomingMessage } from 'node:http';
import { isIP, isIPv4 } from 'node:net';
import proxyAddr from 'proxy-addr';

/**
 * Which `X-Forwarded-For` entries to believe:
 *
 * - `false` (default): none; the client is the socket's peer. Right when the app is reached directly.
 * - a number `n`: the `n` nearest hops are your proxies (e.g. `1` behind one load balancer); the
 *   client is the address the outermost of them saw. Too high a number lets clients pick their address.
 * - a list of addresses / CIDRs (and proxy-addr's names `'loopback'`, `'linklocal'`,
 *   `'uniquelocal'`): hops from these addresses are your proxies; the client is the right-most
 *   address not in the list.
 *
 * `true` (trust every hop) is deliberately not supported: it would take the left-most entry,
 * which the client writes itself.
 */
export type TrustProxy = false | number | readonly string[];

/** A raw Node request (Express's `req` is one) or a Fastify request (`request.raw` is one). */
export type ClientIpRequest = IncomingMessage | { readonly raw: IncomingMessage };

/** proxy-addr's trust function: whether hop `index` (0 = the socket peer) at `address` is a proxy of yours. */
export type TrustFunction = (address: string, index: number) => boolean;

const compiledLists = new WeakMap<readonly string[], TrustFunction>();
const hopCounts: TrustFunction[] = [];

/**
 * Turns a {@link TrustProxy} setting into proxy-addr's trust function (`undefined` for `false`),
 * cached per list and per number. Call it at startup to reject a bad setting early: it throws a
 * `TypeError` for an invalid address or CIDR, `true`, or a negative or fractional number.
 */
export function compileTrustProxy(trustProxy: TrustProxy): TrustFunction | undefined {
  if (trustProxy === false || trustProxy === 0) return undefined;
  if (typeof trustProxy === 'number') {
    if (!Number.isSafeInteger(trustProxy) || trustProxy < 0) {
      throw new TypeError(`trustProxy: expected a number of hops, got ${trustProxy}`);
    }
    return (hopCounts[trustProxy] ??= (_address, index) => index < trustProxy);
  }
  if (!Array.isArray(trustProxy)) {
    throw new TypeError('trustProxy: expected false, a number of hops or a list of addresses (not `true`)');
  }
  let trust = compiledLists.get(trustProxy);
  if (!trust) {
    // proxy-addr's types want a mutable array; it copies it anyway.
    trust = trustProxy.length === 0 ? () => false : proxyAddr.compile(trustProxy as string[]);
    compiledLists.set(trustProxy, trust);
  }
  return trust;
}

/**
 * The client's address for rate limiting, from the raw Node request of Express (`req`) or
 * Fastify (`request.raw`): the socket's peer, or with {@link TrustProxy} the right-most
 * `X-Forwarded-For` entry not written by one of your proxies. IPv4-mapped IPv6 addresses
 * (`::ffff:1.2.3.4`) come out as IPv4. If that entry is not an IP address (a proxy passing on
 * junk), the nearest valid hop is used instead, so junk cannot mint fresh identities; a
 * malformed header never throws. `undefined` only when the socket is already gone.
 */
export function resolveClientIp(request: ClientIpRequest, trustProxy: TrustProxy = false): string | undefined {
  const raw = 'raw' in request ? request.raw : request;
  const trust = compileTrustProxy(trustProxy);
  const socketAddress = raw.socket?.remoteAddress;
  if (trust === undefined || socketAddress === undefined) return normalizeIp(socketAddress);
  let hops: string[];
  try {
    hops = proxyAddr.all(raw, trust);
  } catch {
    return normalizeIp(socketAddress); // e.g. a header value that is not a string
  }
  for (let i = hops.length - 1; i > 0; i--) {
    const hop = withoutPort(hops[i]!);
    if (isIP(hop) !== 0) return normalizeIp(hop);
  }
  return normalizeIp(socketAddress);
}

/**
 * Some proxies (e.g. Azure Application Gateway) write `1.2.3.4:5678` or `[2001:db8::1]:443`;
 * without this, such hops fail the IP check and every client would share the proxy's address.
 */
function withoutPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop);
  if (bracketed) return bracketed[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(hop);
  return v4 ? v4[1]! : hop;
}

/** `::ffff:1.2.3.4` → `1.2.3.4`; anything else unchanged. */
export function normalizeIp(ip: string | undefined): string | undefined {
  if (ip === undefined || isIPv4(ip) || !ip.includes(':')) return ip;
  // Fast path for the usual dual-stack form; other spellings (e.g. ::ffff:102:304) via the groups.
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(ip);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1];
  const groups = ipv6Groups(ip);
  if (groups && isV4Mapped(groups)) {
    return `${groups[6]! >>> 8}.${groups[6]! & 0xff}.${groups[7]! >>> 8}.${groups[7]! & 0xff}`;
  }
  return ip;
}

/** `::ffff:0:0/96`: an IPv4 address carried in IPv6 form. */
function isV4Mapped(groups: readonly number[]): boolean {
  return groups.slice(0, 5).every((group) => group === 0) && groups[5] === 0xffff;
}

/**
 * The rate-limit key of an address: IPv4 addresses as they are, IPv6 addresses by their /64
 * prefix (`2001:db8:1:2::/64`), since one subscriber is normally given a whole /64 and could
 * rotate through its 2^64 addresses. IPv4-mapped IPv6 counts as IPv4. Input that is not an IP
 * address is returned unchanged.
 */
export function rateLimitKeyForIp(ip: string): string {
  if (isIPv4(ip)) return ip;
  const groups = ipv6Groups(ip);
  if (!groups) return ip;
  if (isV4Mapped(groups)) return normalizeIp(ip)!;
  return `${hex(groups[0]!)}:${hex(groups[1]!)}:${hex(groups[2]!)}:${hex(groups[3]!)}::/64`;
}

/**
 * The /56 and /48 keys of an IPv6 address, for the counters beside the /64 one: a customer is
 * often given a /56 or a /48 and can step through its 256 or 65,536 /64s. `undefined` for IPv4
 * (and IPv4-mapped IPv6) and for input that is not an IP address.
 */
export function rateLimitKeysForIpv6Prefixes(ip: string): { prefix56: string; prefix48: string } | undefined {
  if (isIPv4(ip)) return undefined;
  const groups = ipv6Groups(ip);
  if (!groups || isV4Mapped(groups)) return undefined;
  const [a, b, c, d] = groups as [number, number, number, number];
  return {
    prefix56: `${hex(a)}:${hex(b)}:${hex(c)}:${hex(d & 0xff00)}::/56`,
    prefix48: `${hex(a)}:${hex(b)}:${hex(c)}::/48`,
  };
}

function hex(group: number): string {
  return group.toString(16);
}

/** The eight 16-bit groups of a valid IPv6 address (zone id ignored), or `undefined`. */
function ipv6Groups(ip: string): number[] | undefined {
  if (isIP(ip) !== 6) return undefined;
  const zone = ip.indexOf('%');
  if (zone !== -1) ip = ip.slice(0, zone);
  const gap = ip.indexOf('::');
  const head = parseGroups(gap === -1 ? ip : ip.slice(0, gap));
  const tail = gap === -1 ? [] : parseGroups(ip.slice(gap + 2));
  const zeros = new Array<number>(8 - head.length - tail.length).fill(0);
  return head.concat(zeros, tail);
}

function parseGroups(part: string): number[] {
  if (part === '') return [];
  const groups: number[] = [];
  for (const group of part.split(':')) {
    if (group.includes('.')) {
      // Embedded IPv4 in the last 32 bits (already validated by isIP).
      const [a, b, c, d] = group.split('.').map(Number) as [number, number, number, number];
      groups.push((a << 8) | b, (c << 8) | d);
    } else {
      groups.push(parseInt(group, 16));
    }
  }
  return groups;
}
