import busboy from 'busboy';
import type { Request } from 'express';

/**
 * Reads a multipart/form-data POST (a product form with its photo) as it streams in, keeping at
 * most `maxFileBytes` of the one file: past that the file is marked too large and the rest of it
 * is drained and dropped, so a 12 MB photo costs 10 MB of memory at most and gets a clear answer.
 * A body far past any reasonable size is cut off (the caller answers 413).
 */

export interface MultipartForm {
  fields: Record<string, string>;
  file: { field: string; filename: string; data: Buffer; tooLarge: boolean } | null;
}

export class MultipartError extends Error {
  constructor(
    readonly code: 'not-multipart' | 'too-large' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

export function parseMultipart(req: Request, opts: { maxFileBytes: number; maxBodyBytes: number }): Promise<MultipartForm> {
  return new Promise((resolve, reject) => {
    let bb: busboy.Busboy;
    try {
      bb = busboy({
        headers: req.headers,
        limits: { fileSize: opts.maxFileBytes, files: 1, fields: 40, fieldSize: 64 * 1024, parts: 50, headerPairs: 100 },
      });
    } catch {
      reject(new MultipartError('not-multipart', 'not a multipart body'));
      return;
    }
    const fields: Record<string, string> = {};
    let file: MultipartForm['file'] = null;
    let received = 0;
    let failed = false;
    const fail = (e: MultipartError) => {
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      req.resume();
      reject(e);
    };
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > opts.maxBodyBytes) {
        fail(new MultipartError('too-large', 'request body too large'));
        req.destroy();
      }
    });
    bb.on('field', (name, value) => {
      if (!(name in fields)) fields[name] = value;
    });
    bb.on('file', (field, stream, info) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let tooLarge = false;
      stream.on('data', (c: Buffer) => {
        size += c.length;
        chunks.push(c);
      });
      stream.on('limit', () => {
        tooLarge = true;
        chunks.length = 0; // nothing of a refused file is kept
      });
      stream.on('end', () => {
        // An empty file input still sends a part with no name and no bytes: that is "no file".
        if (size === 0 && !info.filename) return;
        file = { field, filename: info.filename ?? '', data: tooLarge ? Buffer.alloc(0) : Buffer.concat(chunks), tooLarge };
      });
    });
    bb.on('error', () => fail(new MultipartError('malformed', 'malformed multipart body')));
    bb.on('close', () => {
      if (!failed) resolve({ fields, file });
    });
    req.pipe(bb);
  });
}
