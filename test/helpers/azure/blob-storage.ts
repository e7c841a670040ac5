/**
 * The blob storage behind the registry's SAS URLs (build source uploads, run logs), served by the local
 * ARM endpoint under /_blob/{path}, speaking Azure Blob's wire protocol to the real @azure/storage-blob
 * client (BlockBlobClient.upload/uploadData) and to plain fetch.
 *
 * What it enforces, as Azure does at that point:
 * - a SAS on every request: sv, se, sr=b, sp and sig; a missing or malformed one, or one whose signature
 *   does not match (tampered, or issued for another blob), is 403 AuthenticationFailed; one past its expiry
 *   (se) is 403 AuthenticationFailed; one without the permission (r to read; w to write, or c to create a
 *   blob that does not exist yet) is 403 AuthorizationPermissionMismatch. The signature here is an HMAC over
 *   sp, se, the blob's path, sv and sr with a key of this store: simpler than Azure's string-to-sign, but it
 *   binds the same things.
 * - Put Blob: x-ms-blob-type is required (400 MissingRequiredHeader) and must be BlockBlob (400
 *   InvalidHeaderValue: page and append blobs are not served); Content-Length is required (411
 *   MissingContentLengthHeader); a Content-MD5 sent must match the body (400 Md5Mismatch).
 * - Put Block (comp=block): a base64 blockid, of one length per blob (400 InvalidQueryParameterValue);
 *   Put Block List (comp=blocklist) names only staged blocks (400 InvalidBlockList). That is what uploadData
 *   does past its single-shot size.
 * - sizes, as Azure's limits for block blobs (service version 2019-12-12 and later): a Put Blob body over
 *   5000 MiB or a Put Block body over 4000 MiB is 413 RequestBodyTooLarge, answered from the request's
 *   Content-Length before its body is read (refuseOversized); a block list of more than 50,000 blocks is
 *   400 InvalidBlockList. A build context (the registry's source upload) meets these limits as on Azure.
 * - x-ms-version is optional with a SAS (sv then decides), as in Azure; when sent it must be a version date
 *   (400 InvalidHeaderValue).
 * Answers are Azure's: 201 with ETag, Last-Modified, Content-MD5, x-ms-request-id, x-ms-version and
 * x-ms-request-server-encrypted; errors as Azure's XML with x-ms-error-code, which the SDK turns into
 * RestError.code. Not enforced: leases, conditional headers, the SAS's start time and IP range.
 */
import crypto from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

const SAS_VERSION = '2024-11-04';

/** Azure's limits for block blobs (service version 2019-12-12 and later). */
export const BLOB_LIMITS = {
  putBlobBytes: 5000 * 1024 * 1024,
  putBlockBytes: 4000 * 1024 * 1024,
  blocksPerBlob: 50_000,
} as const;

interface Blob {
  data: Buffer;
  contentType: string;
  etag: string;
  lastModified: Date;
  md5: string;
}

/** What a write carried, for tests to check what the client sent. */
export interface BlobWriteRecord {
  path: string;
  operation: 'PutBlob' | 'PutBlock' | 'PutBlockList';
  blobType?: string;
  version?: string;
  contentType?: string;
  length: number;
}

export class BlobStorage {
  readonly writes: BlobWriteRecord[] = [];
  private readonly blobs = new Map<string, Blob>();
  private readonly staged = new Map<string, Map<string, Buffer>>();
  private readonly key = crypto.randomBytes(32);

  constructor(private readonly baseUrl: () => string) {}

  /** A URL for `blobPath` with a SAS granting `permissions` (r, c, w) until `expiresInMs` from now. */
  sasUrl(blobPath: string, permissions = 'r', expiresInMs = 3_600_000): string {
    const se = new Date(Date.now() + expiresInMs).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const sas = new URLSearchParams({ sv: SAS_VERSION, se, sr: 'b', sp: permissions });
    sas.set('sig', this.sign(blobPath, sas));
    return `${this.baseUrl()}/_blob/${blobPath.split('/').map(encodeURIComponent).join('/')}?${sas.toString()}`;
  }

  get(blobPath: string): Buffer | undefined {
    return this.blobs.get(blobPath)?.data;
  }

  set(blobPath: string, data: Buffer, contentType = 'application/octet-stream'): void {
    this.blobs.set(blobPath, newBlob(data, contentType));
  }

  /**
   * Answers 413 RequestBodyTooLarge to a write whose Content-Length is over Azure's limit for it, before
   * its body is read (as Azure answers, and closes the connection); false when the write may go on.
   */
  refuseOversized(req: IncomingMessage, url: URL, res: ServerResponse, record: (status: number) => void): boolean {
    if (req.method !== 'PUT') return false;
    const length = Number(header(req, 'content-length') ?? 0);
    const comp = url.searchParams.get('comp');
    const limit = comp === 'block' ? BLOB_LIMITS.putBlockBytes : comp === null ? BLOB_LIMITS.putBlobBytes : Infinity;
    if (!(length > limit)) return false;
    const code = 'RequestBodyTooLarge';
    const xml =
      `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>The request body is too large ` +
      `and exceeds the maximum permissible limit.\nRequestId:${crypto.randomUUID()}\nTime:${new Date().toISOString()}` +
      `</Message><MaxLimit>${limit}</MaxLimit></Error>`;
    record(413);
    res.writeHead(413, {
      'content-type': 'application/xml',
      'x-ms-error-code': code,
      'content-length': String(Buffer.byteLength(xml)),
      connection: 'close',
    });
    res.end(xml, () => req.destroy());
    return true;
  }

  /** Serves /_blob/{path}; `record` logs the answer with the endpoint's requests. */
  handle(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse, record: (status: number) => void): void {
    const blobPath = decodeURIComponent(url.pathname.slice('/_blob/'.length));
    const version = header(req, 'x-ms-version');
    const common = {
      'x-ms-request-id': crypto.randomUUID(),
      'x-ms-version': version ?? url.searchParams.get('sv') ?? SAS_VERSION,
      date: new Date().toUTCString(),
      ...(header(req, 'x-ms-client-request-id')
        ? { 'x-ms-client-request-id': header(req, 'x-ms-client-request-id')! }
        : {}),
    };
    const answer = (status: number, headers: Record<string, string> = {}, payload?: Buffer) => {
      record(status);
      res.writeHead(status, { ...common, 'content-length': String(payload?.length ?? 0), ...headers });
      res.end(payload);
    };
    const fail = (status: number, code: string, message: string) => {
      const xml = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}\nRequestId:${common['x-ms-request-id']}\nTime:${new Date().toISOString()}</Message></Error>`;
      answer(status, { 'content-type': 'application/xml', 'x-ms-error-code': code }, Buffer.from(xml));
    };

    const refused = this.checkSas(blobPath, url.searchParams, req.method ?? 'GET');
    if (refused) return fail(403, refused.code, refused.message);
    if (version !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(version)) {
      return fail(
        400,
        'InvalidHeaderValue',
        `The value for one of the HTTP headers is not in the correct format: x-ms-version ${version}`,
      );
    }

    if (req.method === 'GET' || req.method === 'HEAD') {
      const blob = this.blobs.get(blobPath);
      if (!blob) return fail(404, 'BlobNotFound', 'The specified blob does not exist.');
      return answer(
        200,
        {
          'content-type': blob.contentType,
          etag: blob.etag,
          'last-modified': blob.lastModified.toUTCString(),
          'content-md5': blob.md5,
          'x-ms-blob-type': 'BlockBlob',
          'accept-ranges': 'bytes',
        },
        req.method === 'GET' ? blob.data : undefined,
      );
    }
    if (req.method !== 'PUT') return fail(405, 'UnsupportedHttpVerb', `The resource doesn't support ${req.method}.`);

    if (header(req, 'content-length') === undefined) {
      return fail(411, 'MissingContentLengthHeader', 'Content-Length HTTP header is missing.');
    }
    const md5 = crypto.createHash('md5').update(body).digest('base64');
    const sentMd5 = header(req, 'content-md5');
    if (sentMd5 !== undefined && sentMd5 !== md5) {
      return fail(
        400,
        'Md5Mismatch',
        'The MD5 value specified in the request did not match with the MD5 value calculated by the server.',
      );
    }
    const written = (operation: BlobWriteRecord['operation'], blobType?: string) =>
      this.writes.push({
        path: blobPath,
        operation,
        blobType,
        version,
        contentType: header(req, 'x-ms-blob-content-type') ?? header(req, 'content-type'),
        length: body.length,
      });
    const encrypted = { 'x-ms-request-server-encrypted': 'true' };
    const committed = (blob: Blob) =>
      answer(201, {
        etag: blob.etag,
        'last-modified': blob.lastModified.toUTCString(),
        'content-md5': md5,
        ...encrypted,
      });
    const contentType =
      header(req, 'x-ms-blob-content-type') ?? header(req, 'content-type') ?? 'application/octet-stream';

    const comp = url.searchParams.get('comp');
    if (comp === 'block') {
      const id = url.searchParams.get('blockid') ?? '';
      const blocks = this.staged.get(blobPath) ?? new Map<string, Buffer>();
      const sameLength = [...blocks.keys()].every((k) => k.length === id.length);
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(id) || id.length % 4 !== 0 || !sameLength) {
        return fail(
          400,
          'InvalidQueryParameterValue',
          `Value for one of the query parameters specified in the request URI is invalid: blockid ${id}`,
        );
      }
      blocks.set(id, body);
      this.staged.set(blobPath, blocks);
      written('PutBlock');
      return answer(201, { 'content-md5': md5, ...encrypted });
    }
    if (comp === 'blocklist') {
      const blocks = this.staged.get(blobPath) ?? new Map<string, Buffer>();
      const ids = [...body.toString('utf8').matchAll(/<(Latest|Uncommitted|Committed)>([^<]*)<\/\1>/g)].map(
        (m) => m[2]!,
      );
      if (ids.length === 0 || ids.length > BLOB_LIMITS.blocksPerBlob || ids.some((id) => !blocks.has(id))) {
        return fail(400, 'InvalidBlockList', 'The specified block list is invalid.');
      }
      const blob = newBlob(Buffer.concat(ids.map((id) => blocks.get(id)!)), contentType);
      this.blobs.set(blobPath, blob);
      this.staged.delete(blobPath);
      written('PutBlockList');
      return committed(blob);
    }
    if (comp !== null) return fail(400, 'InvalidQueryParameterValue', `comp=${comp} is not served here.`);

    const blobType = header(req, 'x-ms-blob-type');
    if (blobType === undefined) {
      return fail(
        400,
        'MissingRequiredHeader',
        "An HTTP header that's mandatory for this request is not specified: x-ms-blob-type",
      );
    }
    if (blobType !== 'BlockBlob') {
      return fail(
        400,
        'InvalidHeaderValue',
        `The value for one of the HTTP headers is not in the correct format: x-ms-blob-type ${blobType}`,
      );
    }
    const blob = newBlob(body, contentType);
    this.blobs.set(blobPath, blob);
    written('PutBlob', blobType);
    return committed(blob);
  }

  private sign(blobPath: string, sas: URLSearchParams): string {
    const toSign = [sas.get('sp'), sas.get('se'), `/blob/${blobPath}`, sas.get('sv'), sas.get('sr')].join('\n');
    return crypto.createHmac('sha256', this.key).update(toSign, 'utf8').digest('base64');
  }

  private checkSas(
    blobPath: string,
    sas: URLSearchParams,
    method: string,
  ): { code: string; message: string } | undefined {
    const failed = (message: string) => ({
      code: 'AuthenticationFailed',
      message: `Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature. ${message}`,
    });
    const [sv, se, sr, sp, sig] = ['sv', 'se', 'sr', 'sp', 'sig'].map((k) => sas.get(k));
    if (!sig) return failed('No shared access signature.');
    if (!sv || !se || !sp || sr !== 'b' || Number.isNaN(Date.parse(se)))
      return failed('Signature fields not well formed.');
    const expected = Buffer.from(this.sign(blobPath, sas));
    const given = Buffer.from(sig);
    if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) {
      return failed('Signature did not match.');
    }
    if (Date.parse(se) <= Date.now()) {
      return failed(
        `Signature not valid in the specified time frame: Expiry [${se}] - Current [${new Date().toUTCString()}]`,
      );
    }
    const allowed =
      method === 'GET' || method === 'HEAD'
        ? sp.includes('r')
        : sp.includes('w') || (sp.includes('c') && !this.blobs.has(blobPath));
    if (!allowed) {
      return {
        code: 'AuthorizationPermissionMismatch',
        message: 'This request is not authorized to perform this operation using this permission.',
      };
    }
    return undefined;
  }
}

function newBlob(data: Buffer, contentType: string): Blob {
  return {
    data,
    contentType,
    etag: `"0x8D${crypto.randomBytes(7).toString('hex').toUpperCase()}"`,
    lastModified: new Date(),
    md5: crypto.createHash('md5').update(data).digest('base64'),
  };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
