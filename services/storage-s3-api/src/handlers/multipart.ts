// Multipart uploads: create one, upload its parts, list them, complete or abort it.
import type { Call } from "../call";
import { S3Error, xmlEscape, xmlUnescape } from "../errors";
import { readSmallBody, receiveUpload } from "../request-body";
import { contentMd5 } from "../objects";
import { userMetadataOf } from "./object";

/** The upload a request names: the operation table sends only requests that name one here. */
const uploadOf = ({ query }: Call) => query.get("uploadId") ?? "";

export async function createUpload({ req, bucket, key, service, send }: Call) {
    const uploadId = await service.objects.createUpload(bucket, key, {
        contentType: req.headers["content-type"],
        userMetadata: userMetadataOf(req.headers),
    });
    send(
        200,
        {},
        `<?xml version="1.0" encoding="UTF-8"?>\n<InitiateMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket>` +
            `<Key>${xmlEscape(key)}</Key><UploadId>${xmlEscape(uploadId)}</UploadId></InitiateMultipartUploadResult>`,
    );
}

export async function uploadPart(call: Call) {
    const { query, bucket, key, service } = call;
    const md5 = contentMd5(call.req.headers["content-md5"] as string | undefined);
    await receiveUpload(call, (body, length) => {
        const partNumber = Number(query.get("partNumber"));
        if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) {
            throw new S3Error("InvalidArgument", "partNumber is a whole number from 1 to 10000");
        }
        return service.objects.uploadPart(bucket, key, uploadOf(call), partNumber, body, length, md5);
    });
}

export async function completeUpload(call: Call) {
    const { req, auth, bucket, key, service, proceed, send } = call;
    proceed();
    const xml = (await readSmallBody(req, auth.payloadHash)).toString("utf8");
    const parts = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
        part: Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1])?.[1]),
        etag: xmlUnescape(/<ETag>([^<]*)<\/ETag>/.exec(m[1])?.[1] ?? ""),
    }));
    if (parts.length === 0 || parts.some((p) => !Number.isInteger(p.part) || !p.etag)) {
        throw new S3Error("MalformedXML", "CompleteMultipartUpload lists parts with PartNumber and ETag");
    }
    const etag = await service.objects.completeUpload(bucket, key, uploadOf(call), parts);
    send(
        200,
        {},
        `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUploadResult><Location>/${xmlEscape(bucket)}/${xmlEscape(key)}</Location>` +
            `<Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag></CompleteMultipartUploadResult>`,
    );
}

export async function abortUpload(call: Call) {
    await call.service.objects.abortUpload(call.bucket, call.key, uploadOf(call));
    call.send(204);
}

export async function listParts(call: Call) {
    const { query, bucket, key, service, send } = call;
    const uploadId = uploadOf(call);
    const marker = query.get("part-number-marker");
    const max = query.get("max-parts");
    const out = await service.objects.listParts(
        bucket,
        key,
        uploadId,
        marker ? Number(marker) : undefined,
        max ? Number(max) : undefined,
    );
    const parts = out.parts
        .map(
            (p) =>
                `<Part><PartNumber>${p.part}</PartNumber><LastModified>${p.lastModified?.toISOString() ?? ""}</LastModified>` +
                `<ETag>${xmlEscape(p.etag)}</ETag><Size>${p.size}</Size></Part>`,
        )
        .join("");
    send(
        200,
        {},
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListPartsResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key>` +
            `<UploadId>${xmlEscape(uploadId)}</UploadId><IsTruncated>${out.truncated}</IsTruncated>` +
            `${out.nextMarker ? `<NextPartNumberMarker>${out.nextMarker}</NextPartNumberMarker>` : ""}${parts}</ListPartsResult>`,
    );
}
