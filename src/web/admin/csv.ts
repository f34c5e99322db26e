import type { Response } from 'express';

/**
 * CSV for spreadsheets in Taiwan: UTF-8 with a byte-order mark (without it Excel reads the file
 * as Big5 and shows mojibake), CRLF line ends, RFC 4180 quoting, and a guard against formula
 * injection (a cell a shopper could type, starting with = + - @ or a tab/CR, gets a leading
 * apostrophe, so a spreadsheet shows it as text instead of running it).
 */

export const BOM = '\uFEFF';

export function csvCell(v: string | number | boolean | null | undefined): string {
  if (v === null || v === undefined) return '';
  let s = String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

export const csvLine = (cells: ReadonlyArray<string | number | boolean | null | undefined>): string => cells.map(csvCell).join(',') + '\r\n';

/**
 * Streams rows to the response as CSV, waiting for the socket to drain whenever its buffer is
 * full, so a large export holds one page of rows in memory, not the file. Rows are written in
 * batches of a few hundred lines to keep the number of socket writes low.
 */
export async function streamCsv<T>(
  res: Response,
  filename: string,
  header: readonly string[],
  rows: AsyncIterable<T>,
  toCells: (row: T) => ReadonlyArray<string | number | boolean | null | undefined>,
): Promise<void> {
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', `attachment; filename="${filename.replace(/[^\w.-]/g, '_')}"`);
  let closed = false;
  res.on('close', () => {
    closed = true;
  });
  const write = async (chunk: string) => {
    if (!res.write(chunk)) await new Promise<void>((r) => {
      const done = () => {
        res.off('drain', done);
        res.off('close', done);
        r();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  };
  await write(BOM + csvLine(header));
  let batch = '';
  let n = 0;
  for await (const row of rows) {
    if (closed) return; // the browser went away: stop reading the database
    batch += csvLine(toCells(row));
    if (++n % 200 === 0) {
      await write(batch);
      batch = '';
    }
  }
  if (batch) await write(batch);
  res.end();
}
