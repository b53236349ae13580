// Print what `prisma migrate status` concluded, from its debug output, as one line:
//
//   node diagnose.mjs STDERR-FILE
//   table=yes history=databaseIsBehind unapplied=a,b unpersisted= failed=c edited=
//
// The CLI prints its schema engine's diagnosis (diagnoseMigrationHistory) on stderr when
// DEBUG=prisma:migrate:status is set, as `prisma:migrate:status {JSON} +12ms`, the JSON
// holding the engine's answer as a string. Its `history` is null when the folder and the
// database agree. Exits 1, saying why, when there is no diagnosis in the file.
import { readFileSync } from 'node:fs'

const text = readFileSync(process.argv[2], 'utf8').replace(/\x1b\[[0-9;]*m/g, '')
const lines = text.split('\n')
let diagnosis = null
for (let i = 0; i < lines.length && diagnosis === null; i++) {
  if (!/^\s*prisma:migrate:status \{$/.test(lines[i])) continue
  const body = ['{']
  for (i++; i < lines.length; i++) {
    const end = /^\}\s+\+\d+(\.\d+)?[a-z]*$/.exec(lines[i])
    body.push(end ? '}' : lines[i])
    if (end) break
  }
  const msg = JSON.parse(body.join('\n'))
  if (typeof msg.diagnoseResult === 'string') diagnosis = JSON.parse(msg.diagnoseResult)
}
if (diagnosis === null) {
  console.error(`diagnose.mjs: no diagnoseResult in '${process.argv[2]}'`)
  process.exit(1)
}
const h = diagnosis.history
const names = (a) => (a ?? []).join(',')
console.log([
  `table=${diagnosis.hasMigrationsTable ? 'yes' : 'no'}`,
  `history=${h ? h.diagnostic : 'none'}`,
  `unapplied=${names(h?.unappliedMigrationNames)}`,
  `unpersisted=${names(h?.unpersistedMigrationNames)}`,
  `failed=${names(diagnosis.failedMigrationNames)}`,
  `edited=${names(diagnosis.editedMigrationNames)}`,
].join(' '))
