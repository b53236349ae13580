// Prisma CLI configuration for flotilla's compatibility tests: Prisma's WebAssembly
// schema engine (`engine: 'js'`) over adapter.mjs, so that no native engine is
// downloaded. tests/compat/lib.sh copies this file into each test project, next to
// prisma/schema.prisma and prisma/migrations/.
import { defineConfig } from 'prisma/config'
import { adapterFactory } from './adapter.mjs'

export default defineConfig({
  experimental: { adapter: true },
  engine: 'js',
  schema: 'prisma/schema.prisma',
  async adapter() {
    return adapterFactory(process.env.DATABASE_URL)
  },
})
