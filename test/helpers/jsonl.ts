import fs from 'node:fs/promises';

/** Every line of a JSONL file, parsed; a torn or invalid line fails the test that reads it. */
export async function readJsonl<T = unknown>(file: string): Promise<T[]> {
  const text = await fs.readFile(file, 'utf8');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line, i) => {
      try {
        return JSON.parse(line) as T;
      } catch {
        throw new Error(`${file}:${i + 1} is not valid JSON: ${line.slice(0, 100)}`);
      }
    });
}
