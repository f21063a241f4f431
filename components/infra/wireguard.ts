// The WireGuard configuration of one node or device, without its private key: wg-apply.sh adds a node's on the
// node; a device's is read from its own key file when the tunnel comes up.

export interface WireGuardPeer {
    name: string;
    publicKey: string;
    /** host:port the peer listens on; absent for a roaming device. */
    endpoint?: string;
    /** The peer's mesh address (a /32), plus anything routed through it. */
    allowedIps: string[];
}

export interface WireGuardInterface {
    /** This member's mesh address with the mesh prefix, e.g. 10.99.0.1/24. */
    address: string;
    /** A node's fixed port; a roaming device has none. */
    listenPort?: number;
    /** A device's key file, which wg-quick reads when the tunnel comes up (the key stays in that file). */
    privateKeyFile?: string;
    peers: WireGuardPeer[];
}

/** wg-quick configuration text; peers sorted by name so the text changes only when the peer set does. */
export function renderWireGuardConfig(wg: WireGuardInterface): string {
    const lines = ["[Interface]", `Address = ${wg.address}`];
    if (wg.listenPort !== undefined) lines.push(`ListenPort = ${wg.listenPort}`);
    if (wg.privateKeyFile) lines.push(`PostUp = wg set %i private-key ${wg.privateKeyFile}`);
    for (const peer of [...wg.peers].sort((a, b) => a.name.localeCompare(b.name))) {
        lines.push("", `# ${peer.name}`, "[Peer]", `PublicKey = ${peer.publicKey}`);
        if (peer.endpoint) lines.push(`Endpoint = ${peer.endpoint}`);
        lines.push(`AllowedIPs = ${peer.allowedIps.join(", ")}`, "PersistentKeepalive = 25");
    }
    return `${lines.join("\n")}\n`;
}
