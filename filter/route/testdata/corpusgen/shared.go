package main

// Language-neutral building blocks: code, errors, logs, data.
func registerShared() {
	addPools("*", map[string][]string{
		"plang": {"Python", "Go", "Rust", "TypeScript", "JavaScript", "Java", "C#", "C++", "Kotlin", "Ruby", "PHP", "Swift", "Scala", "Elixir"},
		"snippet": {
			"```python\ndef average(xs):\n    return sum(xs) / len(xs)\n\nprint(average([]))\n```",
			"```go\nfunc worker(jobs <-chan int, wg sync.WaitGroup) {\n\tdefer wg.Done()\n\tfor j := range jobs {\n\t\tfmt.Println(j)\n\t}\n}\n```",
			"```js\nconst ids = users.map(u => { u.id });\nconsole.log(ids);\n```",
			"```java\npublic int sum(List<Integer> xs) {\n    int total = 0;\n    for (int i = 0; i <= xs.size(); i++) total += xs.get(i);\n    return total;\n}\n```",
			"```rust\nfn longest(a: &str, b: &str) -> &str {\n    if a.len() > b.len() { a } else { b }\n}\n```",
			"```ts\nasync function load(url: string) {\n  const res = fetch(url);\n  return res.json();\n}\n```",
			"```python\nimport threading\ncounter = 0\ndef inc():\n    global counter\n    for _ in range(100000):\n        counter += 1\n```",
			"```c\nchar *copy(const char *s) {\n    char buf[64];\n    strcpy(buf, s);\n    return buf;\n}\n```",
			"```sql\nSELECT name, COUNT(*) FROM orders JOIN customers ON orders.customer_id = customers.id GROUP BY customers.id;\n```",
			"```ruby\ndef fib(n)\n  return n if n < 2\n  fib(n - 1) + fib(n - 2)\nend\n```",
			"```kotlin\nfun parse(s: String): Int = s.toInt()\nval n = parse(readLine())\n```",
			"```php\n<?php\n$id = $_GET['id'];\n$r = mysqli_query($db, \"SELECT * FROM users WHERE id = $id\");\n```",
			"```csharp\nvar list = new List<string>();\nforeach (var s in list) { if (s == null) list.Remove(s); }\n```",
			"```python\nwith open('data.csv') as f:\n    rows = f.readlines()\nfor r in rows:\n    a, b = r.split(',')\n    print(int(a) + int(b))\n```",
			"```go\nresp, err := http.Get(url)\ndefer resp.Body.Close()\nif err != nil {\n\treturn err\n}\n```",
			"```bash\nfor f in $(ls *.txt); do\n  cat $f | grep error > out.txt\ndone\n```",
			"def merge(a, b):\n    out = []\n    while a and b:\n        out.append(a.pop(0) if a[0] < b[0] else b.pop(0))\n    return out + a + b",
			"function debounce(fn, ms) {\n  let t;\n  return (...args) => { clearTimeout(t); t = setTimeout(() => fn(...args), ms); };\n}",
		},
		"error": {
			"TypeError: Cannot read properties of undefined (reading 'length')\n    at render (App.jsx:42:17)",
			"Traceback (most recent call last):\n  File \"main.py\", line 9, in <module>\n    data = json.loads(raw)\njson.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)",
			"panic: assignment to entry in nil map\n\ngoroutine 1 [running]:\nmain.main()\n\t/app/main.go:14 +0x3c",
			"error[E0502]: cannot borrow `v` as mutable because it is also borrowed as immutable",
			"java.lang.ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 5\n\tat com.acme.Report.row(Report.java:57)",
			"ModuleNotFoundError: No module named 'pandas'",
			"fatal: refusing to merge unrelated histories",
			"Error: listen EADDRINUSE: address already in use :::3000",
			"Segmentation fault (core dumped)",
			"ERROR 1452 (23000): Cannot add or update a child row: a foreign key constraint fails",
			"CrashLoopBackOff: back-off 5m0s restarting failed container=api pod=api-7d9f8",
			"undefined reference to `pthread_create'",
		},
		"log": {
			"2024-03-02T10:14:07Z INFO  api  request served path=/v1/users status=200 ms=12\n2024-03-02T10:14:09Z ERROR api  upstream timeout path=/v1/orders status=504 ms=30001\n2024-03-02T10:15:11Z WARN  db   slow query ms=2300 table=orders\n2024-03-02T10:16:45Z ERROR auth token expired user=4411",
			"[12:01:33] worker-3 started job 8812\n[12:01:35] worker-3 job 8812 failed: disk quota exceeded\n[12:02:10] worker-1 started job 8813\n[12:02:12] worker-1 job 8813 done in 2.1s",
			"Mar 14 08:00:01 web01 sshd[2211]: Failed password for root from 203.0.113.7 port 52114\nMar 14 08:00:03 web01 sshd[2211]: Failed password for root from 203.0.113.7 port 52114\nMar 14 08:02:40 web01 sshd[2290]: Accepted publickey for deploy from 198.51.100.4",
			"level=error ts=2024-05-01T09:00:00Z caller=sync.go:88 msg=\"replication lag\" lag_seconds=41\nlevel=info ts=2024-05-01T09:00:05Z caller=sync.go:70 msg=\"caught up\"\nlevel=error ts=2024-05-01T09:07:12Z caller=http.go:19 msg=\"handler panic\" path=/export",
		},
		"yaml": {
			"```yaml\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n          ports:\n            - containerPort: \"80\"\n```",
			"```yaml\nservices:\n  db:\n    image: postgres:16\n    environment:\n      POSTGRES_PASSWORD: example\n  app:\n    build: .\n    depends_on: [db]\n    ports: [\"8080:80\"]\n```",
		},
		"jsondata": {
			`{"id": 991, "customer": {"name": "Lena Park", "email": "lena@example.com"}, "items": [{"sku": "A-12", "qty": 2, "price": 9.5}, {"sku": "B-7", "qty": 1, "price": 120}], "status": "shipped"}`,
			`[{"city": "Lyon", "temp": 21}, {"city": "Oslo", "temp": 9}, {"city": "Cairo", "temp": 33}]`,
		},
		"sqlq": {
			"SELECT * FROM events WHERE DATE(created_at) = '2024-01-01' ORDER BY created_at DESC;",
			"SELECT u.*, (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id) AS n FROM users u WHERE u.email LIKE '%@gmail.com';",
		},
		"codedoc": {
			"Hey, so the outage yesterday was caused by this change in the billing service:\n```python\nif user.plan == 'pro':\n    price = base * 0.8\n```\nWe forgot the enterprise branch, so enterprise customers were charged full price for six hours. Finance refunded 312 accounts. The fix shipped at 16:40. Going forward, every pricing change needs a second reviewer.",
			"Release email from Tomás: The new export endpoint is live. Call it with `curl -X POST https://api.example.com/v2/export -d '{\"format\":\"csv\"}'`. It returns a job id; poll /v2/jobs/{id} until status is done. Rate limit is 10 calls per minute. The old /v1/export goes away on 1 July.",
			"Post-mortem draft: At 02:13 the cron job `0 2 * * * /opt/backup.sh` started while the migration `ALTER TABLE orders ADD COLUMN note TEXT` still held a lock. Backups queued, disk filled to 100%, and the API returned 500s for 47 minutes. Action items: move backups to 03:00, add disk alerts at 80%.",
			"From the README of our internal tool: Install with `pip install acme-cli`. Run `acme login` once, then `acme deploy --env staging`. Configuration lives in ~/.acme/config.toml. Known issue: on Windows the path must use forward slashes.",
		},
		"jsgroup": {"```js\nfunction groupBy(xs, key) {\n  return xs.reduce((acc, x) => { (acc[x[key]] = acc[x[key]] || []).push(x); return acc; }, {});\n}\n```"},
		"tlang":   {"French", "German", "Spanish", "Japanese", "Chinese", "Korean", "Russian", "Portuguese", "Italian", "English"},
	})
}
