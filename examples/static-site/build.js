// The project's build: copies src/ to dist/, filling in the page template.
const fs = require("fs");
const path = require("path");

const src = path.join(__dirname, "src");
const dist = path.join(__dirname, "dist");
fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(dist, { recursive: true });

const layout = fs.readFileSync(path.join(src, "layout.html"), "utf8");
for (const name of fs.readdirSync(src)) {
  if (name === "layout.html") continue;
  const text = fs.readFileSync(path.join(src, name), "utf8");
  const out = name.endsWith(".html")
    ? layout.replace("{{content}}", text).replace("{{page}}", name)
    : text;
  fs.writeFileSync(path.join(dist, name), out);
  console.log(`built dist/${name}`);
}
