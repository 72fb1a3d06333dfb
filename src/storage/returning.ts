/**
 * The rows of an `UPDATE`/`DELETE ... RETURNING` run through `DataSource.query`: TypeORM's postgres
 * driver answers those with `[rows, affected]`, a `SELECT` or `INSERT` with the rows alone.
 */
export function returning<T>(res: unknown): T[] {
  return (Array.isArray(res) && res.length === 2 && Array.isArray(res[0]) && typeof res[1] === 'number' ? res[0] : res) as T[];
}
