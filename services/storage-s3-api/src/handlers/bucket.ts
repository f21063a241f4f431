// The operations on the service and on a bucket: list, create, look at and delete buckets, list their objects,
// delete objects in a batch.
import {
    CreateBucketCommand,
    DeleteBucketCommand,
    DeleteObjectsCommand,
    HeadBucketCommand,
    ListBucketsCommand,
} from "@aws-sdk/client-s3";
import type { Call } from "../call";
import { S3Error, xmlEscape, xmlUnescape } from "../errors";
import { type Listing, type ListRequest, listObjects as listBackend } from "../listing";
import type { EncryptedObjects } from "../objects";
import { readSmallBody } from "../request-body";

export async function listBuckets({ method, service, send }: Call) {
    if (method !== "GET") throw new S3Error("MethodNotAllowed", "only GET is allowed on the service");
    const out = await service.backend.send(new ListBucketsCommand({}));
    send(200, {}, listBucketsXml(out.Buckets ?? []));
}

export async function createBucket({ bucket, service, proceed, send }: Call) {
    proceed();
    await service.backend.send(new CreateBucketCommand({ Bucket: bucket }));
    send(200, { Location: `/${bucket}` });
}

// A backend's answer to HEAD has no body, so its 404 does not say that the bucket is what is missing: the
// operation table names it NoSuchBucket for these two.
export async function headBucket({ bucket, service, send }: Call) {
    await service.backend.send(new HeadBucketCommand({ Bucket: bucket }));
    send(200);
}

export async function getBucketLocation({ bucket, service, send }: Call) {
    // minio-go (restic, mc) asks before its first request unless given a region. S3 names
    // us-east-1 by leaving the constraint empty.
    await service.backend.send(new HeadBucketCommand({ Bucket: bucket }));
    const location = service.region === "us-east-1" ? "" : xmlEscape(service.region);
    send(
        200,
        {},
        `<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${location}</LocationConstraint>`,
    );
}

export async function deleteBucket({ bucket, service, send }: Call) {
    await service.backend.send(new DeleteBucketCommand({ Bucket: bucket }));
    send(204);
}

export async function deleteObjects({ req, auth, bucket, service, proceed, send }: Call) {
    proceed();
    const xml = (await readSmallBody(req, auth.payloadHash)).toString("utf8");
    const keys = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => xmlUnescape(m[1]));
    if (keys.length === 0 || keys.length > 1000) {
        throw new S3Error("MalformedXML", "Delete lists between 1 and 1000 keys");
    }
    if (keys.some((k) => k.startsWith(".pce/"))) {
        throw new S3Error("AccessDenied", "keys under .pce/ are reserved");
    }
    const stored = keys.map((k) => service.objects.stored(bucket, k));
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/.test(xml);
    const out = await service.backend.send(
        new DeleteObjectsCommand({
            Bucket: bucket,
            Delete: { Objects: stored.map((Key) => ({ Key })), Quiet: quiet },
        }),
    );
    const clientKey = (key: string | undefined) => keys[stored.indexOf(key ?? "")] ?? "";
    const deleted = (out.Deleted ?? []).map((d) => `<Deleted><Key>${xmlEscape(clientKey(d.Key))}</Key></Deleted>`);
    const failed = (out.Errors ?? []).map(
        (e) => `<Error><Key>${xmlEscape(clientKey(e.Key))}</Key><Code>${xmlEscape(e.Code ?? "")}</Code></Error>`,
    );
    send(
        200,
        {},
        `<?xml version="1.0" encoding="UTF-8"?>\n<DeleteResult>${deleted.join("")}${failed.join("")}</DeleteResult>`,
    );
}

/** ListObjects of this version. */
export const listObjects = (version: 1 | 2) => async (call: Call) => list(call, version);

async function list({ bucket, query, service, send }: Call, version: 1 | 2) {
    const encodingType = query.get("encoding-type") ?? undefined;
    if (encodingType !== undefined && encodingType !== "url") {
        throw new S3Error("InvalidArgument", "encoding-type can only be url");
    }
    const maxKeys = query.has("max-keys") ? Number(query.get("max-keys")) : 1000;
    const request: ListRequest = {
        version,
        prefix: query.get("prefix") ?? "",
        delimiter: query.get("delimiter") || undefined,
        ...(version === 2
            ? {
                  startAfter: query.get("start-after") ?? undefined,
                  continuationToken: query.get("continuation-token") ?? undefined,
              }
            : { marker: query.get("marker") ?? undefined }),
        maxKeys: Math.min(maxKeys, 1000),
    };
    const listing = await listBackend(service.backend, bucket, request, service.names);
    send(200, {}, await listingXml(bucket, request, listing, service.objects, encodingType));
}

function listBucketsXml(buckets: { Name?: string; CreationDate?: Date }[]): string {
    const items = buckets
        .map(
            (b) =>
                `<Bucket><Name>${xmlEscape(b.Name ?? "")}</Name><CreationDate>${b.CreationDate?.toISOString() ?? ""}</CreationDate></Bucket>`,
        )
        .join("");
    return `<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult><Owner><ID>peoples-cloud</ID></Owner><Buckets>${items}</Buckets></ListAllMyBucketsResult>`;
}

/**
 * A name as S3 lists it with `encoding-type=url`: form-style percent-encoding (a space is `+`), `/` kept.
 * Clients that ask for it (rclone, minio-go, the AWS CLI) decode every key and prefix they get back.
 */
const urlEncoded = (name: string) => encodeURIComponent(name).replaceAll("%2F", "/").replaceAll("%20", "+");

async function listingXml(
    bucket: string,
    request: ListRequest,
    listing: Listing,
    objects: EncryptedObjects,
    encodingType?: "url",
): Promise<string> {
    const listed = await Promise.all(
        listing.objects.map((o) => objects.listed(bucket, o.key, o.backendSize, o.backendEtag)),
    );
    const name = (value: string) => xmlEscape(encodingType ? urlEncoded(value) : value);
    const contents = listing.objects
        .map(
            (o, i) =>
                `<Contents><Key>${name(o.key)}</Key><LastModified>${o.lastModified?.toISOString() ?? ""}</LastModified>` +
                `<ETag>${xmlEscape(listed[i].etag)}</ETag><Size>${listed[i].size}</Size>` +
                `<StorageClass>STANDARD</StorageClass></Contents>`,
        )
        .join("");
    const prefixes = listing.prefixes
        .map((p) => `<CommonPrefixes><Prefix>${name(p)}</Prefix></CommonPrefixes>`)
        .join("");
    const opt = (tag: string, value: string | undefined, escape = xmlEscape) =>
        value ? `<${tag}>${escape(value)}</${tag}>` : "";
    const paging =
        request.version === 1
            ? `${opt("Marker", request.marker, name)}${opt("NextMarker", listing.nextMarker, name)}`
            : `<KeyCount>${listing.objects.length + listing.prefixes.length}</KeyCount>` +
              `${opt("ContinuationToken", request.continuationToken)}${opt("NextContinuationToken", listing.nextContinuationToken)}` +
              `${opt("StartAfter", request.startAfter, name)}`;
    return (
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>${xmlEscape(bucket)}</Name>` +
        `${opt("Prefix", request.prefix, name)}${opt("Delimiter", request.delimiter, name)}<MaxKeys>${request.maxKeys}</MaxKeys>` +
        `${opt("EncodingType", encodingType)}<IsTruncated>${listing.truncated}</IsTruncated>${paging}` +
        `${contents}${prefixes}</ListBucketResult>`
    );
}
