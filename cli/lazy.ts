// What the family tool loads only when a command gets that far: the engine's Automation API with the whole
// program (two seconds of loading), and the QR encoder. A refused command answers without them.
/* eslint-disable @typescript-eslint/no-require-imports -- require() is what loads a module on demand here */
export const workspaceModule = () => require("./workspace") as typeof import("./workspace");
export const restoreModule = () => require("./restore") as typeof import("./restore");
export const statusModule = () => require("./status") as typeof import("./status");
export const automation = () => require("@pulumi/pulumi/automation") as typeof import("@pulumi/pulumi/automation");
export const qrcode = () => require("qrcode") as typeof import("qrcode");
