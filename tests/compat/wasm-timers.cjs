// Preloaded into the Prisma CLI by lib.sh (node --require): timers that Prisma's
// WebAssembly schema engine starts do not keep node alive.
//
// The engine wraps its advisory lock wait in a 10 s timeout (a setTimeout from the wasm
// glue) and never clears it, and the CLI ends a successful command by letting node run
// out of work: `migrate status` or `migrate resolve` would then sit for 10 s after they
// are done. (The native engine runs in a child process, so its timers never held the CLI.)
// An unref'd timer still fires while anything else keeps the process alive, such as the
// query waiting for the lock, so Prisma's lock timeout is unchanged. A command cut short
// by this would lack its closing output, which every test asserts.
'use strict'

const realSetTimeout = globalThis.setTimeout
globalThis.setTimeout = function setTimeout(fn, ms, ...args) {
  const timer = realSetTimeout(fn, ms, ...args)
  if (new Error().stack.includes('wasm://')) timer.unref()
  return timer
}
