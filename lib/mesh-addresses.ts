// Mesh addresses: each member's comes from a hash of its own name into the mesh CIDR, so adding or removing
// other nodes or devices never moves it. Two names that land on one address are a config error (see
// stacks/schema.ts), fixed by renaming one or widening the mesh; the default /16 makes that rare.
import { createHash } from "node:crypto";
import { intToIpv4, ipv4ToInt, parseCidr } from "./cidr";

/** The mesh address of a member named `name` in `cidr` (an IPv4 CIDR of at most /30). */
export function meshAddressOf(name: string, cidr: string): string {
    const parsed = parseCidr(cidr);
    if (parsed?.family !== 4 || parsed.prefix > 30)
        throw new RangeError(`'${cidr}' is not an IPv4 CIDR of at most /30`);
    const size = 2 ** (32 - parsed.prefix);
    const network = ipv4ToInt(parsed.address) & (size === 2 ** 32 ? 0 : ~(size - 1) >>> 0);
    const hash = createHash("sha256").update(name).digest().readUInt32BE(0);
    return intToIpv4((network >>> 0) + 1 + (hash % (size - 2)));
}

/** Pairs of members whose names hash to the same address; the second of each pair must change. */
export function meshCollisions(names: string[], cidr: string): { name: string; other: string; address: string }[] {
    const taken = new Map<string, string>();
    const collisions: { name: string; other: string; address: string }[] = [];
    for (const name of names) {
        const address = meshAddressOf(name, cidr);
        const other = taken.get(address);
        if (other) collisions.push({ name, other, address });
        else taken.set(address, name);
    }
    return collisions;
}
