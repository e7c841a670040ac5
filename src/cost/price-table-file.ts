/**
 * Which price table a command uses: `--price-table FILE`, else the file named by INFERCTL_PRICE_TABLE, else
 * the shipped default (price-table.ts). The file is read by the CLI, checked, and travels in the workflow's
 * input: the workflow prices with exactly the table it was started with, on any worker.
 */
import fs from 'node:fs';
import path from 'node:path';

import type { PriceTable } from '../shared/cost-types';
import { DEFAULT_PRICE_TABLE, PriceTableError, checkPriceTable } from '../shared/price-table';

/** The environment variable naming a price table file, when --price-table is not given. */
export const PRICE_TABLE_ENV = 'INFERCTL_PRICE_TABLE';

export function loadPriceTable(file: string | undefined, env: NodeJS.ProcessEnv = process.env): PriceTable {
  const chosen = file ?? env[PRICE_TABLE_ENV];
  if (chosen === undefined || chosen === '') return DEFAULT_PRICE_TABLE;
  const where = file !== undefined ? `--price-table ${file}` : `${PRICE_TABLE_ENV}=${chosen}`;
  let text: string;
  try {
    text = fs.readFileSync(path.resolve(chosen), 'utf8');
  } catch (err) {
    throw new PriceTableError(where, [`it cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PriceTableError(where, [`it is not JSON (${(err as Error).message})`]);
  }
  return checkPriceTable(value, where);
}
