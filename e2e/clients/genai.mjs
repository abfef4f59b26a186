// Drives Google's Gen AI SDK (@google/genai) through llmproc: one
// generateContent, one generateContentStream, a function-call round trip
// (the call, then its functionResponse with the call's id) and a
// countTokens, against the model given. Prints one JSON object.
// Usage: node genai.mjs <baseUrl> <model> <apiKey>
import { GoogleGenAI } from "@google/genai";

const [baseUrl, model, apiKey] = process.argv.slice(2);
const ai = new GoogleGenAI({ apiKey, httpOptions: { baseUrl } });
const out = {};

const gen = await ai.models.generateContent({ model, contents: "Say hello" });
out.generate = gen.text;
out.usage = gen.usageMetadata;

let streamed = "";
let chunks = 0;
for await (const chunk of await ai.models.generateContentStream({ model, contents: "Say hello" })) {
  chunks++;
  streamed += chunk.text ?? "";
}
out.stream = streamed;
out.chunks = chunks;

const tools = [{
  functionDeclarations: [{
    name: "get_weather",
    description: "The weather in a city",
    parametersJsonSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  }],
}];
const ask = { role: "user", parts: [{ text: "What is the weather in Paris?" }] };
const first = await ai.models.generateContent({ model, contents: [ask], config: { tools } });
const call = first.functionCalls?.[0];
out.call = call ?? null;
if (call) {
  const second = await ai.models.generateContent({
    model,
    contents: [ask, first.candidates[0].content,
      { role: "user", parts: [{ functionResponse: { id: call.id, name: call.name, response: { output: "sunny" } } }] }],
    config: { tools },
  });
  out.final = second.text;
}

const count = await ai.models.countTokens({ model, contents: "How many tokens is this?" });
out.totalTokens = count.totalTokens;
console.log(JSON.stringify(out));
