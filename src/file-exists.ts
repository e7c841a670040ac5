import fs from 'node:fs/promises';

/** True when `file` can be reached (it exists and its directories can be searched). */
export async function fileExists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
