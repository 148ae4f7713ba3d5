/** `src/dashboard.html`, bundled as text by tsup's `loader: { '.html': 'text' }`. */
declare module '*.html' {
  const text: string;
  export default text;
}
