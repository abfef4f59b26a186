// Drives Google's Gen AI SDK (@google/genai) embedContent through llmproc
// (the SDK sends the Gemini API's batchEmbedContents): one text, then two
// at the dimensionality given. Prints one JSON object.
// Usage: node genai_embed.mjs <baseUrl> <model> <apiKey> <dimensions>
import { GoogleGenAI } from "@google/genai";

const [baseUrl, model, apiKey, dims] = process.argv.slice(2);
const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl } });
const one = await ai.models.embedContent({ model, contents: "hello from genai" });
const two = await ai.models.embedContent({
  model,
  contents: ["first text", "second text"],
  config: { outputDimensionality: Number(dims), taskType: "RETRIEVAL_DOCUMENT" },
});
console.log(JSON.stringify({ one: one.embeddings, two: two.embeddings }));
