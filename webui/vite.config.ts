// Vite build of the Moat console: Preact via esbuild's automatic JSX runtime,
// output to dist/ (served by moatd, see docs/console.md). No inline scripts:
// the CSP moatd sends forbids them.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: 'es2020',
  },
  server: {
    // `npm run dev`: the API of a moatd on its default port
    proxy: { '/api': 'http://127.0.0.1:8080', '/healthz': 'http://127.0.0.1:8080', '/metrics': 'http://127.0.0.1:8080' },
  },
});
