// The name under which a family's services are reached when it has no domain of its own: a wildcard DNS name
// that encodes the ingress address (sslip.io answers `<anything>.<address>.sslip.io` with that address), so
// certificates can be issued with no DNS step. IPv6 works too, which nip.io does not serve.
import { isIP } from "node:net";

export const WILDCARD_DNS_SUFFIX = "sslip.io";

/** `203-0-113-10.sslip.io`, `2a01-4f8-c17-b8f--2.sslip.io`; dashes, since a dotted IPv4 would add labels. */
export function defaultDomain(address: string): string {
    const family = isIP(address);
    if (family === 4) return `${address.replace(/\./g, "-")}.${WILDCARD_DNS_SUFFIX}`;
    if (family !== 6) throw new Error(`'${address}' is not an IP address: set peoples-cloud:domain`);
    if (address.includes(".")) throw new Error(`'${address}': IPv4-mapped IPv6 addresses have no wildcard name`);
    let label = compressIpv6(address).replace(/:/g, "-");
    // A DNS label may not begin or end with '-': spell the zeros out where '::' sits at an end.
    if (label.startsWith("-") || label.endsWith("-")) label = expandIpv6(address).join("-");
    return `${label}.${WILDCARD_DNS_SUFFIX}`;
}

/** The eight groups, without leading zeros. */
function expandIpv6(address: string): string[] {
    const [head, tail] = address.toLowerCase().split("::");
    const groups = (s: string | undefined) => (s ? s.split(":") : []);
    const left = groups(head);
    const right = groups(tail);
    const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
    return [...left, ...middle, ...right].map((g) => g.replace(/^0+(?=.)/, ""));
}

/** RFC 5952's canonical form: lower case, no leading zeros, the longest run of two or more zero groups as '::'. */
function compressIpv6(address: string): string {
    const groups = expandIpv6(address);
    let best = { start: -1, length: 1 };
    for (let i = 0; i < 8;) {
        if (groups[i] !== "0") {
            i++;
            continue;
        }
        let j = i;
        while (j < 8 && groups[j] === "0") j++;
        if (j - i > best.length) best = { start: i, length: j - i };
        i = j;
    }
    if (best.start < 0) return groups.join(":");
    return `${groups.slice(0, best.start).join(":")}::${groups.slice(best.start + best.length).join(":")}`;
}
