/**
 * The blob storage behind the registry's SAS URLs (build source uploads, run logs), served by the local
 * ARM endpoint under /_blob/{path}.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export class BlobStorage {
  private readonly blobs = new Map<string, Buffer>();

  constructor(private readonly baseUrl: () => string) {}

  /** A URL for `blobPath` carrying a SAS. */
  sasUrl(blobPath: string): string {
    return `${this.baseUrl()}/_blob/${blobPath}?sv=2024-01-01&sig=local`;
  }

  get(blobPath: string): Buffer | undefined {
    return this.blobs.get(blobPath);
  }

  set(blobPath: string, data: Buffer): void {
    this.blobs.set(blobPath, data);
  }

  /** Serves /_blob/{path}; `record` logs the answer with the endpoint's requests. */
  handle(req: IncomingMessage, url: URL, body: Buffer, res: ServerResponse, record: (status: number) => void): void {
    const key = url.pathname.slice('/_blob/'.length);
    const finish = (status: number, payload?: Buffer | string) => {
      record(status);
      res.writeHead(status);
      res.end(payload);
    };
    if (!url.searchParams.get('sig')) return finish(403, 'AuthenticationFailed: no SAS signature');
    if (req.method === 'PUT') {
      if (req.headers['x-ms-blob-type'] !== 'BlockBlob') return finish(400, 'x-ms-blob-type: BlockBlob is required');
      this.blobs.set(key, body);
      return finish(201);
    }
    const blob = this.blobs.get(key);
    return blob ? finish(200, blob) : finish(404, 'BlobNotFound');
  }
}
