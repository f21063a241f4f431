// The layering of the repository, checked by `npm run lint` (dependency-cruiser). Configuration flows down
// (stacks/ -> program.ts -> components/), the layers build on each other in one order, lib/ is under all of
// them, and each service stands on its own. Type-only imports count: they are read from the TypeScript, so a
// type-only cycle or a type from a higher layer is refused like any other import.

/** The layers in components/, lowest first. */
const LAYERS = ["infra", "foundation", "vault", "apps", "backup"];

/** @type {import("dependency-cruiser").IConfiguration} */
module.exports = {
    forbidden: [
        {
            name: "no-cycle",
            severity: "error",
            comment: "An import cycle, type-only imports included: the modules in it can no longer change apart.",
            from: {},
            to: { circular: true },
        },
        {
            name: "stacks-import-no-component",
            severity: "error",
            comment:
                "stacks/ holds the config schema and its loading: it may use lib/, never a component (config " +
                "flows down; an invariant both need belongs in lib/).",
            from: { path: "^stacks/" },
            to: { path: "^components/" },
        },
        {
            name: "lib-under-everything",
            severity: "error",
            comment: "lib/ is the execution library under the layers: it imports no component, stacks/ or program.ts.",
            from: { path: "^lib/" },
            to: { path: "^(components/|stacks/|program\\.ts$|index\\.ts$)" },
        },
        // Each layer may import the layers below it (and lib/, packages), never one above.
        ...LAYERS.slice(0, -1).map((layer, i) => ({
            name: `${layer}-imports-no-higher-layer`,
            severity: "error",
            comment: `Layers: ${LAYERS.join(" < ")}. ${layer} imports no layer above it.`,
            from: { path: `^components/${layer}/` },
            to: { path: `^components/(${LAYERS.slice(i + 1).join("|")})/` },
        })),
        {
            name: "components-import-layers-and-lib-only",
            severity: "error",
            comment:
                "A component takes Args of its own: it imports lower layers, lib/ and packages, not the config " +
                "schema, the program, the policy pack, a service or tests.",
            from: { path: "^components/" },
            to: { path: "^(stacks/|program\\.ts$|index\\.ts$|policy/|services/|tests/|scripts/)" },
        },
        {
            name: "service-imports-only-its-own-folder",
            severity: "error",
            comment:
                "A service builds, tests and ships on its own: by relative path it imports only its own folder; " +
                "anything else (a shared workspace package, another service's exports) by package name.",
            from: { path: "^services/([^/]+)/" },
            to: { dependencyTypes: ["local"], pathNot: "^services/$1/" },
        },
        {
            name: "cli-on-top",
            severity: "error",
            comment:
                "cli/ is the family tool on top of the program: the program, its layers and its config know " +
                "nothing of it.",
            from: { path: "^(components/|lib/|stacks/|policy/|services/|program\\.ts$|index\\.ts$)" },
            to: { path: "^cli/" },
        },
        {
            name: "policy-imports-no-component",
            severity: "error",
            comment: "The policy pack judges what the program registers; it does not know the components' code.",
            from: { path: "^policy/" },
            to: { path: "^components/" },
        },
    ],
    options: {
        doNotFollow: { path: "node_modules" },
        exclude: { path: "^(bin|tools)/|(^|/)(dist|\\.pulumi)/" },
        tsPreCompilationDeps: true,
        tsConfig: { fileName: "tsconfig.json" },
        enhancedResolveOptions: {
            exportsFields: ["exports"],
            conditionNames: ["import", "require", "node", "default", "types"],
            mainFields: ["main", "types", "typings"],
        },
    },
};
