// The K3s flags the infra layer owns: it sets them from the mesh and the k3s settings, so the config schema
// refuses them in extra args.
/** Flags the program sets from the mesh and the settings; extra args may not override them. */
export const MANAGED_K3S_FLAGS: readonly string[] = [
    "node-name",
    "node-ip",
    "node-external-ip",
    "flannel-iface",
    "token",
    "token-file",
    "server",
    "cluster-init",
    "advertise-address",
    "bind-address",
    "cluster-cidr",
    "service-cidr",
    "secrets-encryption",
    "write-kubeconfig-mode",
];
