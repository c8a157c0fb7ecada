// Vite's dev server for the storefront. It imports nothing: the dev image
// carries Vite, and the workspace has no node_modules to install.
const polling = process.env.VITE_USE_POLLING === "true";

export default {
  server: {
    host: "0.0.0.0",
    port: 3000,
    strictPort: true,
    // Volumes without inotify (some network file systems) need polling.
    watch: polling ? { usePolling: true, interval: 100 } : {},
  },
  // Vite's dependency cache on the workspace: a restarted pod starts warm.
  cacheDir: process.env.VITE_CACHE_DIR || "node_modules/.vite",
  clearScreen: false,
};
