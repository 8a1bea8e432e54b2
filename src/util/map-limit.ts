/**
 * Maps `items` through `fn` with at most `limit` calls in flight, keeping the
 * order. Reading a 50,000-record prefix with Promise.all opens every file at
 * once and ends in EMFILE (too many open files); this keeps the speed of
 * parallel reads without that.
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
