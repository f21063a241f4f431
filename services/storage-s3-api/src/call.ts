// What an operation's handler is given: the request, authenticated and routed, and the service's parts.
import type * as http from "node:http";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Verified } from "./auth/sigv4";
import type { NameCipher } from "./format/names";
import type { EncryptedObjects } from "./objects";

export interface Service {
    region: string;
    backend: S3Client;
    objects: EncryptedObjects;
    /** Name privacy's cipher, when it is on. */
    names?: NameCipher;
    maxObjectSize: number;
}

export interface Call {
    req: http.IncomingMessage;
    res: http.ServerResponse;
    method: string;
    auth: Verified;
    /** The path's bucket and key, decoded; "" where the operation's scope has none. */
    bucket: string;
    key: string;
    query: URLSearchParams;
    service: Service;
    /** Sends `100 Continue` if the client waits for it: call it just before reading the body. */
    proceed: () => void;
    /** Answers with a status, headers and an XML body if there is one. */
    send: (status: number, headers?: http.OutgoingHttpHeaders, body?: string) => void;
}

/** Answers one operation; a failure it throws becomes the client's S3 error (see server.ts). */
export type Handler = (call: Call) => Promise<void>;
