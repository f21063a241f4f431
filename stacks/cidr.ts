// CIDR parsing shared by the config schema and the mesh.
import { isIP } from "node:net";

export function parseCidr(value: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
    const match = /^([^/]+)\/(\d{1,3})$/.exec(value);
    if (!match) return undefined;
    const family = isIP(match[1]);
    const prefix = Number(match[2]);
    if (family === 0 || prefix > (family === 4 ? 32 : 128)) return undefined;
    return { address: match[1], prefix, family: family as 4 | 6 };
}
