/** wrangler (and the test's esbuild build) import `.html` files as text modules. */
declare module "*.html" {
  const text: string;
  export default text;
}
