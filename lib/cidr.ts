// CIDR and IPv4 arithmetic, for the config schema (overlaps, sizes) and the mesh (addresses).
import { isIP } from "node:net";

export function parseCidr(value: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
    const match = /^([^/]+)\/(\d{1,3})$/.exec(value);
    if (!match) return undefined;
    const family = isIP(match[1]);
    const prefix = Number(match[2]);
    if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
    return { address: match[1], prefix, family: family as 4 | 6 };
}

export function ipv4ToInt(address: string): number {
    return address.split(".").reduce((acc, octet) => acc * 256 + Number(octet), 0) >>> 0;
}

export function intToIpv4(n: number): string {
    return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join(".");
}

/** Whether two IPv4 CIDRs share an address (false for anything that is not a valid IPv4 CIDR). */
export function cidrsOverlap(a: string, b: string): boolean {
    const pa = parseCidr(a);
    const pb = parseCidr(b);
    if (pa?.family !== 4 || pb?.family !== 4) return false;
    const prefix = Math.min(pa.prefix, pb.prefix);
    const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
    return (ipv4ToInt(pa.address) & mask) >>> 0 === (ipv4ToInt(pb.address) & mask) >>> 0;
}
