// The driver adapter the compatibility tests give Prisma's schema engine: Prisma's own
// @prisma/adapter-pg, made to talk to PostgreSQL the way Prisma's native schema engine
// (quaint, over tokio-postgres) does, so that what the tests observe is what
// `prisma migrate deploy` does in production:
//
// - One connection (`max: 1`). Prisma takes its migration lock with a session-level
//   pg_advisory_lock(72707369) and then reads and writes the history; on a pool those
//   could land on different connections, which the native engine never does.
// - executeScript sends the whole script as one simple-protocol query, as the native
//   engine's raw_cmd does: one implicit transaction for a multi-statement migration.sql,
//   a lone CREATE INDEX CONCURRENTLY outside any block. adapter-pg's own executeScript
//   splits the text on every ';' (strings and $$ bodies included) and sends the pieces
//   one by one.
// - A `?schema=` in the URL selects the schema as the native engine does: search_path is
//   set to the quoted name as a connection parameter, and the schema engine is told the
//   name (getConnectionInfo). pg itself would ignore the parameter.
// - `allowExitOnIdle`: the CLI does not always dispose of the adapter before it is done
//   (migrate status), and an idle pooled connection would keep node alive for pg's idle
//   timeout (10 s). The connection still lives, lock and all, while the CLI works.
import { PrismaPg } from '@prisma/adapter-pg'

export function adapterFactory(url) {
  if (!url) throw new Error('adapter.mjs: DATABASE_URL is not set')
  const q = url.indexOf('?')
  const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1))
  const schema = params.get('schema') ?? 'public'
  params.delete('schema')
  const rest = params.toString()
  const connectionString = (q < 0 ? url : url.slice(0, q)) + (rest ? `?${rest}` : '')
  const factory = new PrismaPg(
    { connectionString, max: 1, allowExitOnIdle: true, options: `-c search_path="${schema}"` },
    { schema })

  return {
    provider: factory.provider,
    adapterName: factory.adapterName,
    async connect() {
      const adapter = await factory.connect()
      adapter.executeScript = async function (script) {
        try {
          await this.client.query(script) // no parameters: the simple protocol
        } catch (e) {
          this.onError(e) // maps the error as adapter-pg does, and throws
        }
      }
      return adapter
    },
    connectToShadowDb() {
      return factory.connectToShadowDb()
    },
  }
}
