// Drives the OpenAI Node SDK's embeddings.create through llmproc against
// each model given: once with the SDK's default (it asks for base64 on the
// wire and decodes the float32s itself) and once with encoding_format
// "float". Prints one JSON object: per model, both calls' vectors, model and
// usage.
// Usage: node embeddings.mjs <baseUrl> <model>=<input JSON> ...
import OpenAI from "openai";

const [baseUrl, ...specs] = process.argv.slice(2);
const client = new OpenAI({ apiKey: "sk-llmproc-client", baseURL: baseUrl + "/v1", maxRetries: 0 });
const out = {};
for (const spec of specs) {
  const eq = spec.indexOf("=");
  const model = spec.slice(0, eq);
  const input = JSON.parse(spec.slice(eq + 1));
  const decoded = await client.embeddings.create({ model, input });
  const float = await client.embeddings.create({ model, input, encoding_format: "float" });
  out[model] = {
    default: decoded.data.map((d) => Array.from(d.embedding)),
    float: float.data.map((d) => d.embedding),
    index: decoded.data.map((d) => d.index),
    model: decoded.model,
    usage: decoded.usage,
  };
}
console.log(JSON.stringify(out));
