package main

import "fmt"

func registerEN() {
	const l = "en"
	wraps[l] = wrap{
		systems: []string{
			"You are a helpful assistant.",
			"You are a helpful assistant. Be concise.",
			"You are Aria, the friendly support assistant for {company}. Answer politely and never share internal data.",
			"You are an expert software engineer. Prefer idiomatic, well-tested code.",
			"You are a math tutor. Explain your reasoning clearly.",
			"You are a professional copywriter for {company}.",
			"You are a data-processing assistant. Follow the instructions exactly.",
			"Today is {weekday}. The user is on the {plan} plan. Keep answers under 200 words.",
			"You work for {company}'s internal IT helpdesk.",
			"Always answer in English, even if the user writes in another language.",
		},
		replies: []string{
			"Sure! Here you go:\n\n{reply_body}",
			"Of course. {reply_body}",
			"Here is what I came up with:\n{reply_body}",
			"Happy to help. {reply_body} Let me know if you need anything else.",
			"Done. {reply_body}",
		},
	}
	addPools(l, map[string][]string{
		"company":    {"Acme Bank", "Northwind Travel", "BrightCart", "Helio Energy", "Pinewood Clinic", "Globex Logistics", "Lumen Telecom"},
		"weekday":    {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"},
		"plan":       {"free", "pro", "enterprise", "basic"},
		"reply_body": {"The answer is 42.", "I have written the first draft above.", "Here is the updated version with your changes.", "The function now handles the empty case.", "I summarised the main points in three bullets.", "Paris is the capital of France.", "Roses are red, the servers are down..."},
		"ctask": {
			"reverse a linked list", "parse an ISO 8601 timestamp", "debounce a function call", "count word frequencies in a text file",
			"validate an email address", "merge overlapping intervals", "retry an HTTP request with exponential backoff", "flatten a nested list",
			"compute the Levenshtein distance between two strings", "read a CSV file and sum one column", "implement a thread-safe counter",
			"check whether a string is a palindrome", "generate a random password", "serve static files over HTTP", "paginate through a REST API",
			"deduplicate records by email", "implement binary search", "watch a directory for file changes", "rate-limit requests with a token bucket",
			"convert a PNG to grayscale", "send an email with an attachment", "hash a password with bcrypt", "upload a file to S3",
			"parse command-line flags", "find the most common element in a list", "detect a cycle in a graph", "stream a large file line by line",
		},
		"sqltask": {
			"returns the second highest salary per department", "finds customers who ordered in January but not in February",
			"computes a 7-day rolling average of daily revenue", "deletes duplicate rows but keeps the newest one",
			"lists products that were never ordered", "counts active users per week for the last quarter",
		},
		"regexgoal": {"a US phone number", "a hex color like #1a2b3c", "a semantic version such as 1.4.0-beta", "a date in DD/MM/YYYY format", "words that start with a capital letter"},
		"ds":        {"an LRU cache", "a min-heap", "a trie", "a ring buffer", "a bloom filter", "a skip list"},
		"uigoal":    {"shows a paginated table of users", "renders a dark-mode toggle", "displays a countdown timer", "lets users drag and drop files", "fetches and shows the weather for a city"},
		"cigoal":    {"runs the tests on every pull request", "builds a Docker image and pushes it on tags", "lints the code and caches dependencies"},
		"shellgoal": {"find all files larger than 100 MB", "rename every .jpeg to .jpg", "count lines of code per file extension", "kill the process listening on port 8080", "show the 10 biggest directories"},
		"entity":    {"a bank account", "a shopping cart", "a parking lot", "a library book loan", "a chess board"},
		"clitask":   {"downloads a URL and prints its size", "converts JSON to YAML", "tails a log file and highlights errors", "bulk-renames files by date"},
		"dep":       {"the database client", "an external HTTP API", "the system clock", "the file system"},
		"apigoal":   {"creating and listing todo items", "user signup with email verification", "uploading profile pictures"},
		"country":   {"Canada", "Peru", "Kenya", "Norway", "Vietnam", "Portugal", "Chile"},
		"city":      {"Lisbon", "Tokyo", "Denver", "Nairobi", "Oslo", "Buenos Aires", "Seoul", "Toronto"},
		"month":     {"March", "July", "October", "December", "May"},
		"acronym":   {"HTTP", "DNS", "CPU", "SaaS", "VPN", "JSON", "GPU", "SSD", "API", "CI/CD", "LLM", "ISP"},
		"techterm":  {"Kubernetes", "a mutex", "a REST API", "Docker", "a hash function", "machine learning", "a firewall", "the cloud", "a load balancer", "blockchain", "an SSD"},
		"topic":     {"stoicism", "the history of Rome", "personal finance", "productivity", "climate science", "chess openings", "bread baking"},
		"animal":    {"crows", "honey bees", "sloths", "axolotls", "elephants"},
		"skill":     {"touch typing", "the guitar", "public speaking", "Spanish", "drawing", "swimming"},
		"food":      {"yogurt", "eggs", "rice", "cheese", "bread"},
		"book":      {"One Hundred Years of Solitude", "Dune", "The Little Prince", "Neuromancer"},
		"subject":   {"a lighthouse keeper who adopts a seagull", "the first snow of winter", "a robot learning to paint", "two rival bakers", "a city that never sleeps", "an old dog's last summer", "a time traveller stuck in 1920", "the moon falling in love with the sea", "a cat who runs a bookshop"},
		"techtopic": {"Kubernetes", "zero-trust security", "vector databases", "microservices", "the history of the internet", "quantum computing", "open-source licensing", "observability", "serverless functions", "large language models"},
		"product":   {"a solar-powered phone charger", "a note-taking app for students", "noise-cancelling earbuds", "a standing desk", "an API monitoring service", "a reusable coffee cup"},
		"business":  {"a vegan bakery", "a bike repair shop", "a cybersecurity startup", "a dog-walking service", "a language school", "a craft brewery"},
		"name":      {"Sam", "Priya", "Jonas", "Maria", "Kenji", "Aisha", "Tom"},
		"hobby":     {"fishing", "board games", "marathons", "jazz", "gardening", "vintage cars"},
		"place":     {"a foggy harbour town", "a Martian colony", "1920s Shanghai", "a remote Alaskan cabin", "a night train across Europe"},
		"style":     {"Emily Dickinson", "a pirate shanty", "a nursery rhyme", "free verse", "a Shakespearean sonnet"},
		"audience":  {"a high-school graduating class", "a team that just missed its deadline", "new nurses", "a startup's first employees"},
		"doc": {
			"The city council voted 7-2 on Tuesday to extend the downtown bike lane network by 12 kilometres. Mayor Dana Ortiz said construction will start in April and cost about $4.2 million, funded mostly by a federal grant. Local businesses raised concerns about losing parking spaces, and the council promised a review after six months.",
			"Hi team, quick update: the Q3 launch is moving from Sept 14 to Sept 28 because the payment provider needs more time for certification. Marketing should pause the email campaign. Ravi will update the status page, and Chen owns the new test plan. Please flag any blockers by Friday. Thanks, Olivia",
			"I bought these headphones three weeks ago. The sound is great and the battery lasts forever, but the right ear cup started creaking after a week and customer support never answered my two emails. Would not buy again at this price.",
			"Our study followed 1,200 adults for ten years. Participants who walked at least 7,000 steps a day had a 38% lower risk of cardiovascular events than those who walked fewer than 4,000, after adjusting for age, smoking and income. The effect levelled off above 10,000 steps.",
			"Subject: Invoice #4471 overdue\nDear Mr. Alvarez, our records show that invoice #4471 for $1,380.00, issued on 2 May, remains unpaid. Please settle it by 30 June to avoid a late fee of 2%. Contact billing@northwind.example or call +1 415 555 0132 with any questions.",
			"Meeting notes 12 March: Attendees Jo, Marek, Sunita. Decided to migrate the blog to the new CMS. Marek to export old posts by the 20th. Sunita to draft the redirect map. Open question: who pays for the extra storage? Next meeting in two weeks.",
			"The tenant shall give the landlord at least sixty (60) days' written notice before vacating the premises. The security deposit of two months' rent will be returned within thirty (30) days after the end of the lease, less any deductions for damage beyond normal wear and tear.",
			"Patch notes v2.3: added offline mode; fixed a crash when uploading files over 2 GB; the search bar now remembers your last query; removed support for Android 8; dark mode is now the default on new installs.",
		},
		"review":  {"Absolutely loved the hotel, the staff went out of their way to help us.", "The package arrived late and the box was crushed.", "It does what it says. Nothing special.", "Worst customer service I have ever dealt with, three hours on hold.", "Great value for money, I would order again."},
		"ticket":  {"I was charged twice for my subscription this month.", "The app crashes every time I open the camera.", "How do I change the email on my account?", "Your website says the store opens at 9 but it was closed.", "I can't log in after resetting my password."},
		"badtext": {"their going to the park tomorow, weather or not it rains.", "me and him has went to the store yesterday and buyed apples.", "Its a importent meeting so dont be late, we needs everyone.", "I has attached the report, let me knows if you has questions."},
		"tabdata": {"Alice 34 Berlin engineer; Bob 29 Madrid designer; Chen 41 Toronto manager", "apples 3 kg 2.50; pears 2 kg 3.10; plums 1 kg 4.00", "Mon 8h, Tue 7.5h, Wed 9h, Thu 6h, Fri 8h"},
		"addr":    {"Flat 3, 22 Baker St, London NW1 6XE, United Kingdom", "1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA", "Calle Mayor 5, 2º izq, 28013 Madrid, Spain"},
		"person":  {"my neighbour", "my manager", "my grandmother", "a teacher", "the nurses at the clinic"},
		"reason":  {"watering my plants while I was away", "mentoring me this year", "the birthday gift", "staying late to fix the release"},
		"event":   {"the summer picnic", "our product launch", "the year-end party", "a hackathon", "the new office opening"},
	})

	// ---- code ----
	fam(l, "code", "Write a {plang} function to {ctask}.", "Can you write me a {plang} function that does this: {ctask}?", "I need {plang} code to {ctask}. Please include comments.")
	fam(l, "code", "How do I {ctask} in {plang}?", "what's the cleanest way to {ctask} in {plang}", "In {plang}, how would you {ctask}? Show an example.")
	fam(l, "code", "Can you fix this? It doesn't work.\n{snippet}", "This is broken and I can't see why:\n{snippet}\nPlease fix it.", "Fix the bug in this code:\n{snippet}")
	fam(l, "code", "I'm getting this error:\n{error}\nWhat am I doing wrong?", "{error}\n\nhow do i fix this", "Our build keeps failing with:\n```\n{error}\n```\nAny idea what's causing it and how to fix it?")
	fam(l, "code", "Explain what this code does, line by line:\n{snippet}", "Can you walk me through this snippet? I inherited it and don't understand it.\n{snippet}", "What does this do?\n{snippet}")
	fam(l, "code", "Refactor this to be more idiomatic {plang}:\n{snippet}", "Clean up this code and make it more readable:\n{snippet}", "Rewrite this code so it's easier to test:\n{snippet}")
	fam(l, "code", "Write unit tests for the following function:\n{snippet}", "Add tests that cover the edge cases of this:\n{snippet}", "Generate pytest or Jest tests (whichever fits) for:\n{snippet}")
	fam(l, "code", "Give me a SQL query that {sqltask}.", "Write a Postgres query that {sqltask}. Tables: employees(id, name, dept_id, salary), departments(id, name), orders(id, customer_id, total, created_at).", "SQL question: I need a query that {sqltask}.")
	fam(l, "code", "Write a regex that matches {regexgoal}.", "I need a regular expression for {regexgoal}, with an explanation of each part.", "regex for {regexgoal}?")
	fam(l, "code", "Implement {ds} in {plang}.", "Write {ds} from scratch in {plang} with insert and lookup.", "Show me a minimal implementation of {ds} in {plang}, with complexity notes in comments.")
	fam(l, "code", "Write a Dockerfile for a {plang} web app.", "Create a multi-stage Dockerfile for a {plang} service that listens on port {n:3000-9000}.", "My Dockerfile is huge. Rewrite it to be smaller:\nFROM ubuntu:22.04\nRUN apt-get update && apt-get install -y python3 python3-pip build-essential\nCOPY . /app\nRUN pip3 install -r /app/requirements.txt\nCMD python3 /app/main.py")
	fam(l, "code", "Create a GitHub Actions workflow that {cigoal}.", "Write a CI pipeline config that {cigoal}.", "Give me a GitLab CI file that {cigoal}.")
	fam(l, "code", "Write a bash one-liner to {shellgoal}.", "What's the shell command to {shellgoal}?", "Linux: how can I {shellgoal} from the terminal?")
	fam(l, "code", "Write a React component that {uigoal}.", "Build a Vue component that {uigoal}.", "I need a small Svelte component that {uigoal}.")
	fam(l, "code", "Write a {plang} class representing {entity}, with methods and validation.", "Model {entity} as a {plang} class with proper encapsulation.", "Design the data structures and write {plang} code for {entity}.")
	fam(l, "code", "Translate this pseudo-code into working {plang}:\nfor each order in orders:\n  if order.total > 100 and order.country != 'US':\n    apply 5% discount\n  add order to batch\nsend batch when it has 50 orders", "Turn this algorithm into {plang} code:\n1. read numbers from stdin\n2. keep a running median\n3. print the median after each number")
	fam(l, "code", "Make this function async and handle errors properly:\n{snippet}", "Add proper error handling and logging to this:\n{snippet}", "Make this code thread-safe:\n{snippet}")
	fam(l, "code", "Write a CLI tool in {plang} that {clitask}.", "Build a small command-line program that {clitask}. Use {plang}.", "I want a script that {clitask}; {plang} preferred.")
	fam(l, "code", "How would I mock {dep} in my {plang} tests? Show code.", "Show me how to stub {dep} in a {plang} unit test.", "Write an example {plang} test that fakes {dep}.")
	fam(l, "code", "This query is slow on a 50M-row table, speed it up:\n{sqlq}", "Why is this query slow and how do I rewrite it?\n{sqlq}", "Suggest indexes and a rewrite for:\n{sqlq}")
	fam(l, "code", "What is wrong with my Kubernetes manifest?\n{yaml}", "kubectl apply fails on this, can you correct it?\n{yaml}", "Add health checks and resource limits to this:\n{yaml}")
	fam(l, "code", "Design the REST endpoints and write the handler for {apigoal} in {plang}.", "Write an Express.js route for {apigoal}.", "Implement a FastAPI endpoint for {apigoal} with validation.")
	fam(l, "code", "hey quick one: {ctask} in {plang}, shortest way?", "quick q - one-liner to {ctask} in {plang}?", "lol I forgot how to {ctask} in {plang}, remind me with a snippet")
	fam(l, "code", "Review my code and point out bugs and style issues:\n{snippet}", "Code review please, be strict:\n{snippet}", "Is there a security problem in this code?\n{snippet}")
	fam(l, "code", "Why does this print the wrong result?\n{snippet}", "This works locally but fails in production. What's going on?\n{snippet}\nThe logs show:\n{error}", "My tests pass but this code has a race condition somewhere. Find it:\n{snippet}")
	fam(l, "code", "Add type hints and docstrings to this:\n{snippet}", "Convert this JavaScript into TypeScript with proper types:\n{jsgroup}")
	fam(l, "code", "Write a Python script that {clitask}.", "Write a Go program that {clitask}.", "Write a PowerShell script that {shellgoal}.")
	fam(l, "code", "My {plang} app leaks memory after a few hours. Here's the main loop:\n{snippet}\nHow do I find and fix the leak?", "The {plang} service uses 100% CPU when idle. What should I profile and change in code?")
	fam(l, "code", "Write a Terraform module for a VPC with two private subnets and a NAT gateway.", "Give me an nginx config that proxies /api to localhost:{n:3000-9000} and serves static files from /var/www.", "Write a Makefile with build, test and lint targets for a {plang} project.")
	fam(l, "code", "Explain the difference between these two implementations and which one I should use:\n{snippet}\nvs\n{snippet}", "Why would someone write it this way? Explain the code:\n{snippet}")
	fam(l, "code", "As our support bot, please also help with this: our integration script fails with {error} — can you patch the script?\n{snippet}", "Customer here. Your SDK example throws an exception. Can you send me corrected code?\n{snippet}")

	// ---- reasoning ----
	famFn(l, "reasoning", func(g *gen) string {
		a, b, c := g.num(2, 12), g.num(3, 30), g.num(2, 20)
		return g.fill(fmt.Sprintf("{If|Suppose} %d workers can build a wall in %d days, how long would %d workers take? {Explain your reasoning.|Show the steps.|}", a, b, c))
	})
	famFn(l, "reasoning", func(g *gen) string {
		v1, v2, d := g.num(40, 90), g.num(50, 120), g.num(100, 600)
		return g.fill(fmt.Sprintf("Two trains leave stations %d km apart at the same time, heading towards each other at %d km/h and %d km/h. {When and where do they meet?|How long until they meet, and how far has the faster one gone?}", d, v1, v2))
	})
	famFn(l, "reasoning", func(g *gen) string {
		age, born, year := g.num(20, 45), g.num(22, 38), g.num(2015, 2030)
		return g.fill(fmt.Sprintf("I'm writing a novel and need the timeline to be consistent. My heroine is %d in 1990 and has her daughter at %d. {How old is the daughter in %d?|In %d, how old are the mother and the daughter?} {Please double-check the arithmetic.|}", age, born, year, year))
	})
	famFn(l, "reasoning", func(g *gen) string {
		n, k := g.num(2, 6), g.num(10, 40)
		return g.fill(fmt.Sprintf("For my story: a dragon hoards %d gold coins and every night a thief steals a {third|quarter} of what is left, then the dragon adds %d new coins. {After how many nights does the hoard first drop below %d?|How many coins are there after %d nights?}", k*100, k, k*20, n))
	})
	fam(l, "reasoning",
		"Quick question: if all bloops are razzies and some razzies are lazzies, are some bloops definitely lazzies?",
		"quick question, probably silly: a bat and a ball cost ${n:2-9}.10 in total and the bat costs ${n:1-2}.00 more than the ball. How much is the ball?",
		"Quick one: there are three boxes labelled apples, oranges and mixed, all labelled wrong. You may take one fruit from one box. How do you relabel them all?",
		"Just a quick question — if it takes 5 machines 5 minutes to make 5 widgets, how long does it take 100 machines to make 100 widgets?",
		"quick q: a lily pad patch doubles every day and covers the lake on day {n:20-60}. On which day was it half covered?")
	fam(l, "reasoning",
		"Ann is taller than Bob. Carl is shorter than Bob but taller than Dee. Eve is taller than Ann. Who is the second shortest?",
		"Five houses in a row are painted different colours. The green house is right of the white one, the red one is in the middle, the blue one is at one end, and yellow is next to blue. What is the order?",
		"On an island, knights always tell the truth and knaves always lie. A says 'B is a knave.' B says 'A and I are the same type.' What are A and B?",
		"Three friends each own one pet: a cat, a dog, a parrot. Mia doesn't own the dog. Leo owns neither the cat nor the dog. Who owns what?")
	famFn(l, "reasoning", func(g *gen) string {
		p, y, m := g.num(2, 9), g.num(3, 30), g.num(1, 50)*1000
		return g.fill(fmt.Sprintf("{If I invest|I put} $%d at %d%% annual interest compounded {yearly|monthly}. How much will I have after %d years, and how much of that is interest?", m, p, y))
	})
	famFn(l, "reasoning", func(g *gen) string {
		pass, ride, n := g.num(40, 120), g.num(2, 4), g.num(8, 50)
		return g.fill(fmt.Sprintf("A monthly transit pass costs $%d and a single ride is $%d.{50|25|}. I ride about %d times a month, but {in summer I cycle instead for two months|I'm away one week in four}. Is the pass worth it over a year? Work it out.", pass, ride, n))
	})
	famFn(l, "reasoning", func(g *gen) string {
		a, b, c := g.num(2, 9), g.num(1, 30), g.num(31, 99)
		return g.fill(fmt.Sprintf("{Solve for x|Find x}: %dx + %d = %d{. Then check the answer.|}", a, b, c))
	})
	fam(l, "reasoning", "Prove that the sum of two odd numbers is always even.", "Prove that the product of two consecutive integers is even.", "Show that the square root of 3 is irrational.", "Prove by induction that 1 + 3 + 5 + ... + (2n − 1) = n².", "Is it true that every prime greater than 3 is one more or one less than a multiple of 6? Prove it or give a counterexample.")
	fam(l, "reasoning", "What's the probability of drawing two aces in a row from a standard deck without replacement?", "If I roll two dice, what are the chances the sum is at least {n:8-11}?", "A test for a disease is 99% accurate and 1 in {n:100-1000} people have it. If I test positive, how likely is it that I'm sick?", "In a room of {n:20-40} people, what's the probability two share a birthday? Roughly is fine but show the approach.")
	fam(l, "reasoning", "Estimate how many piano tuners work in a city of {n:1-9} million people. Show your assumptions.", "Fermi problem: how many golf balls fit in a school bus?", "Roughly how many litres of water does a city of {n:100-900},000 people use per day? Walk through the estimate.")
	famFn(l, "reasoning", func(g *gen) string {
		n, rps, h := g.num(2, 12), g.num(200, 900), g.num(10, 40)
		return g.fill(fmt.Sprintf("We have %d servers, each can handle %d requests per second. Traffic peaks at {%d|%d}0 rps and we want %d%% headroom. {How many servers do we need at peak?|Can we survive losing one server at peak?} Show the calculation.", n, rps, n*rps/10, n*rps/12, h))
	})
	fam(l, "reasoning",
		"What is the time complexity of an algorithm that, for each of n elements, does a binary search in a sorted array of size n? Justify it.",
		"If an O(n log n) sort takes 2 seconds for 1 million items, roughly how long for 8 million? Reason it out.",
		"Which grows faster, n^{n:2-5} or 2^n, and from which n on? Explain.",
		"Is 2^100 bigger than 10^30? Show your reasoning without a calculator.")
	fam(l, "reasoning",
		"I need to schedule four meetings (A, B, C, D) in three rooms between 9 and 12. A and B need the same person, C must come after A, D needs the big room, which is free only from 10. Find a valid schedule.",
		"Plan a 3-day trip to {city} on a budget of {n:300-900} euros: the hotel is 90 a night, I want one museum a day (15 each), meals about 30 a day. What's left for shopping, and is the budget enough?",
		"I have 6 tasks: writing (3h), review (1h, after writing), testing (2h, after review), design (2h, before writing), deploy (30 min, after testing), and a 1h meeting at 2pm. I start at 9am. Give the earliest finish time and an order.",
		"Seat 8 wedding guests at two tables of 4 so that the two brothers sit apart, the couple sits together, and grandma sits next to at least one grandchild. There are 2 grandchildren. Is it possible? Find an arrangement.")
	famFn(l, "reasoning", func(g *gen) string {
		plan, days, up := g.num(10, 30), g.num(5, 25), g.num(35, 80)
		return g.fill(fmt.Sprintf("Hi support, I was on the $%d/month plan and upgraded to the $%d plan on day %d of a 30-day cycle. {How much should my prorated bill be this month?|Your invoice says $%d. Is that correct? Please check the math.}", plan, up, days, up))
	})
	famFn(l, "reasoning", func(g *gen) string {
		n, price, disc, ship := g.num(2, 9), g.num(5, 60), g.num(5, 30), g.num(3, 15)
		return g.fill(fmt.Sprintf("{I ordered|My order had} %d items at $%d each with a %d%% discount and $%d shipping, and I was charged $%d. Was I overcharged, and by how much?", n, price, disc, ship, n*price+ship))
	})
	fam(l, "reasoning",
		"What's the next number: 2, 6, 12, 20, 30, ...? Explain the pattern.",
		"Find the missing number: 3, 9, 27, ?, 243.",
		"What comes next in the sequence 1, 1, 2, 3, 5, 8, 13, and what is the ratio between terms approaching?",
		"Complete the pattern: O, T, T, F, F, S, S, E, ...")
	fam(l, "reasoning",
		"Is this argument valid? 'If it rains, the match is cancelled. The match was cancelled. Therefore it rained.'",
		"My colleague says: every time we deploy on Friday something breaks, so deploying causes bugs. Is the reasoning sound? What's the flaw?",
		"All managers attended the meeting. Some people at the meeting were interns. Can we conclude that some managers are interns?")
	fam(l, "reasoning",
		"How many handshakes happen if {n:5-30} people each shake hands with everyone else once?",
		"What is the angle between the hands of a clock at {n:1-11}:{n:10-50}?",
		"If today is {weekday}, what day of the week will it be in {n:50-500} days?",
		"How many different 4-digit PINs have no repeated digits?")
	fam(l, "reasoning",
		"Should I take job A ({n:60-90}k salary, 1h commute each way) or job B ({n:50-80}k, remote, but I'd pay for a coworking desk at 300 a month)? Value my time at 25 an hour and compare properly.",
		"We can either hire two juniors at 55k each or one senior at 120k. Juniors take 6 months to be productive at 60% of a senior's output each. Over two years, which gives more output per dollar? Lay out the comparison.",
		"Is it cheaper to run a 2 kW heater for 5 hours or a 3 kW one for 3 hours at 0.30 per kWh? And which keeps the room warmer?")
	fam(l, "reasoning",
		"My recipe serves 4 and needs 300 g flour, 2 eggs and 250 ml milk. How much of each do I need for {n:5-15} people, and how many eggs should I buy if they come in boxes of 6?",
		"I have a 5-litre and a 3-litre jug and need exactly 4 litres. How?",
		"A shop sells pens in packs of 3 for 2 dollars and packs of 7 for 4 dollars. What's the cheapest way to buy exactly {n:20-40} pens?")
	fam(l, "reasoning",
		"I'm trying to decide how to split rent fairly: rooms are 12, 15 and 20 square metres, shared space is 40, total rent is {n:1500-3000}. One roommate works from home full-time. Propose a fair split and justify the numbers.",
		"Three of us went to dinner. I paid 90, Ana paid 30 and Ben paid nothing. Ben had the cheapest meal (20), Ana's was 40, mine 60. Who owes whom what?")
	fam(l, "reasoning",
		"In chess, white has king on e1 and rook on a1, black has only a king on e8. What's the fastest forced mate plan, and roughly how many moves?",
		"Two players take turns removing 1, 2 or 3 stones from a pile of {n:15-40}. Whoever takes the last stone wins. Who wins with perfect play, and what's the strategy?",
		"In the Monty Hall problem, why is switching better? Explain it so I'm actually convinced.")
	fam(l, "reasoning",
		"Our A/B test: variant A had {n:100-200} conversions out of 4,000 visitors, B had {n:150-260} out of 4,100. Is the difference significant at 95%? Show the test.",
		"Survey: 60% of 500 people prefer tea. What's the 95% margin of error? Could the true share be under 55%?",
		"Given the data points (1, 2), (2, 4.1), (3, 5.9), (4, 8.2), what is the least-squares line? Show the computation.")
	fam(l, "reasoning",
		"A snail climbs {n:3-5} metres up a 20-metre well each day and slides back 2 metres each night. On which day does it get out?",
		"A father is four times as old as his son. In 20 years he'll be twice as old. How old are they now?",
		"If a shirt is discounted 20% and then another 20% off the reduced price, what is the total discount? Is it 40%?")
	fam(l, "reasoning",
		"Derive the formula for the sum of an arithmetic series.",
		"Compute the derivative of x^3 * sin(x) and find where it is zero on [0, pi].",
		"Evaluate the integral of x * e^x from 0 to 1, step by step.",
		"Find the eigenvalues of the matrix [[4, 1], [2, 3]] and interpret them.")
	fam(l, "reasoning",
		"Given these constraints, order the tasks: C must come before A, B cannot be first, D must come right after B, and E is last. List every valid order.",
		"Four people need to cross a bridge at night with one torch. They take 1, 2, 5 and 10 minutes; at most two cross at once at the slower one's pace. What is the fastest total time?")

	// ---- extraction ----
	fam(l, "extraction", "Summarize this in two sentences:\n\n{doc}", "Can you give me a short summary of the following?\n\n{doc}", "TL;DR please:\n{doc}", "Summarise for a busy executive, three bullets max:\n\n{doc}")
	fam(l, "extraction", "Extract all names, dates and amounts from this text as JSON:\n{doc}", "Pull out every person, organisation and money amount mentioned:\n\n{doc}", "From the text below, list the entities with their type.\n\n{doc}")
	fam(l, "extraction", "Translate into {tlang}:\n\n{doc}", "Please translate this email into {tlang}, keeping the tone:\n\n{doc}", "Can you put this in {tlang} for me? \"{review}\"")
	fam(l, "extraction", "Classify the sentiment of this review as positive, negative or neutral: \"{review}\"", "Is this customer happy or not? Answer with one word.\n\n{review}", "Rate the sentiment from 1 to 5: {review}")
	fam(l, "extraction", "Pull out the action items from these meeting notes, with owners:\n\n{doc}", "Who has to do what by when, according to this?\n\n{doc}", "Make a checklist from this message:\n\n{doc}")
	fam(l, "extraction", "Which category does this support ticket belong to: billing, technical, account or other?\n\n\"{ticket}\"", "Route this ticket to the right team (payments, mobile, accounts, stores): {ticket}", "Label this message with a priority (low, medium, high) and a category: {ticket}")
	fam(l, "extraction", "Fix the grammar and spelling: {badtext}", "Proofread this and correct any mistakes: \"{badtext}\"", "can u correct my english: {badtext}")
	fam(l, "extraction", "Turn this into a markdown table: {tabdata}", "Convert this to CSV with a header row: {tabdata}", "Put this data in a JSON array of objects: {tabdata}")
	fam(l, "extraction", "Summarize this email thread for me:\n\n{codedoc}", "What are the key takeaways from this? Keep it short.\n\n{codedoc}", "Give me the gist of this message in plain English:\n\n{codedoc}")
	fam(l, "extraction", "From this log, list the timestamps of every ERROR line:\n\n{log}", "Which services appear in these logs, and how many errors does each have?\n\n{log}", "Extract the failing jobs and their reasons from this log:\n{log}")
	fam(l, "extraction", "Rewrite this paragraph in a more formal tone:\n\n{doc}", "Make this sound friendlier, same content:\n\n{doc}", "Rewrite this for a ten-year-old:\n\n{doc}")
	fam(l, "extraction", "Shorten this to under 50 words:\n\n{doc}", "Condense this into a single tweet:\n\n{doc}", "Give me a one-line headline for this article:\n\n{doc}")
	fam(l, "extraction", "What is the main point of this passage? One sentence.\n\n{doc}", "According to the text, what was decided?\n\n{doc}", "Does the text below mention a deadline? If so, quote it.\n\n{doc}")
	fam(l, "extraction", "Is this message spam? Answer yes or no.\n\n\"Congratulations!!! You have WON a $1000 gift card. Click here to claim within 24h: bit.ly/xx\"", "Is the following email a phishing attempt? Just answer yes or no and the main clue.\n\n{doc}", "Flag any toxic or abusive language in this comment: \"You people are useless, nobody here knows anything.\"")
	fam(l, "extraction", "Extract the error code and the service name from this stack trace:\n{error}", "Which file and line does this error point to?\n{error}", "From this output, what is the exception type and message?\n{error}")
	fam(l, "extraction", "Make a bullet list of the key points:\n\n{doc}", "List the main facts in this text as bullets:\n\n{doc}", "Outline this text in 3 to 5 points:\n\n{doc}")
	fam(l, "extraction", "Parse this address into street, city, postcode and country: {addr}", "Split this into fields (street, number, city, zip, country) as JSON: {addr}")
	fam(l, "extraction", "Convert this YAML into JSON:\n{yaml}", "Turn this JSON into YAML:\n{jsondata}", "Flatten this JSON into key=value lines:\n{jsondata}")
	fam(l, "extraction", "Extract the customer name, email and the total order value from this:\n{jsondata}", "What SKUs are in this order and how many of each? {jsondata}", "From this JSON, list the cities sorted by temperature, highest first: {jsondata}")
	fam(l, "extraction", "Give me 5 keywords for this article:\n\n{doc}", "Suggest tags for this post based on its content:\n\n{doc}", "What topics does this text cover? Comma-separated.\n\n{doc}")
	fam(l, "extraction", "Redact all personal information (names, emails, phone numbers) from this text:\n\n{doc}", "Anonymise this message before I share it:\n\n{doc}")
	fam(l, "extraction", "Extract the function names defined in this file:\n{snippet}", "List the variables used in this snippet and their types if you can tell:\n{snippet}", "Which libraries does this code import? Just the list.\n```python\nimport os\nimport numpy as np\nfrom flask import Flask, request\nimport requests\n```")
	fam(l, "extraction", "Normalise these phone numbers to E.164: (415) 555-0132, 020 7946 0958, +49 30 901820, 0612345678 (FR)", "Convert these dates to ISO 8601: March 3rd 2024, 12/04/23 (UK), 2024.7.1, last day of Feb 2025", "Standardise these product names: 'iphone 15 PRO max', 'Iphone15 pro', 'APPLE iPhone 15 Pro Max 256GB'")
	fam(l, "extraction", "Detect the language of each line:\nBonjour tout le monde\nGuten Morgen\nおはようございます\nBuenos días\nДоброе утро", "Which of these sentences are questions? 1) Where is it. 2) I wonder why 3) Is it late 4) Close the door")
	fam(l, "extraction", "Paraphrase this so it doesn't sound copied:\n\n{doc}", "Reword this sentence three different ways: \"{review}\"", "Simplify this legal clause into plain language:\n\n{doc}")
	fam(l, "extraction", "Here's the transcript of our call. Who said what about the budget?\n\nMaria: I think we can stay under 50k if we drop the video ads.\nTom: Video is our best channel, I'd rather cut the trade show.\nMaria: The trade show is already paid for.\nLi: Then let's reduce the video budget by a third, not drop it.", "From this chat, extract each person's final decision:\n\nJo: I'll take Monday.\nAmir: I can't do Monday, Wednesday works.\nJo: OK then I'll switch to Tuesday.\nAmir: Wednesday it is for me.")
	fam(l, "extraction", "Answer only from the document below: what is the notice period?\n\n{doc}", "Using only this text, when does construction start and how much will it cost?\n\n{doc}", "Based on the release notes, which Android versions are no longer supported?\n\n{doc}")
	fam(l, "extraction", "Here are a customer's notes. Fill in this form: Name / Issue / Product / Desired outcome.\n\n\"Hi it's Dana Wu again, the blender I bought (model X2) leaks from the bottom, I'd like a replacement not a refund.\"", "Extract the flight number, date and seat from: \"Your booking LH 2213 on 14 Aug, seat 23C, departs FRA 07:45\"")
	fam(l, "extraction", "Translate the comments in this code into English, leave the code as is:\n```python\n# calcula el total con impuestos\ndef total(precio, iva=0.21):\n    # redondear a dos decimales\n    return round(precio * (1 + iva), 2)\n```", "Translate this error message for our French users: \"{error}\"")
	fam(l, "extraction", "Compare these two product descriptions and list the differences in a table:\nA: 12 h battery, 250 g, USB-C, waterproof IPX4, 79 EUR\nB: 9 h battery, 180 g, micro-USB, IPX7, 59 EUR", "Summarise the pros and cons mentioned in these reviews:\n- {review}\n- {review}\n- {review}")

	// ---- creative ----
	fam(l, "creative", "Write a short story about {subject}.", "Tell me a story about {subject}, about 300 words.", "Write a piece of flash fiction about {subject} with a twist ending.")
	fam(l, "creative", "Compose a poem about {subject} in the style of {style}.", "Write a poem about {subject}.", "I'd love a short poem about {subject}, rhyming if possible.")
	fam(l, "creative", "Write a haiku about {subject}.", "Give me three haiku about {techtopic}.", "haiku about monday mornings pls")
	fam(l, "creative", "I need a wedding toast for my brother {name}, who loves {hobby}. Funny but heartfelt, two minutes.", "Write a best-man speech for {name}. He's obsessed with {hobby} and met his wife at a bus stop.", "Help me write a retirement speech for my colleague {name}, 30 years at the company, loves {hobby}.")
	fam(l, "creative", "Write song lyrics about {subject}.", "Write a chorus and two verses for a pop song about {subject}.", "Write a country song about {subject}.")
	fam(l, "creative", "Write an original blog post introducing {techtopic} to beginners.", "Write a 600-word article on why small teams should care about {techtopic}.", "Draft a blog post with a catchy title about lessons we learned adopting {techtopic}.")
	fam(l, "creative", "Write a product description for {product}.", "Create an Amazon listing description for {product}, with a punchy first line.", "Write landing-page copy for {product}.")
	fam(l, "creative", "Write a LinkedIn post announcing that our team just launched {product}.", "Write a tweet thread announcing {product}.", "Write a press release announcing {product}.")
	fam(l, "creative", "Write a limerick about a {hobby} fan who can't stop talking about it.", "Write a limerick about a programmer who hates Mondays.", "Write a funny limerick about {animal}.")
	fam(l, "creative", "Write a dialogue between a grumpy wizard and an eager apprentice about {subject}.", "Write a scene where two old friends meet again in {place}.", "Write a short screenplay scene set in {place}.")
	fam(l, "creative", "Write the opening paragraph of a mystery novel set in {place}.", "Write the first chapter of a fantasy story set in {place}.", "Start a thriller with a gripping first line set in {place}.")
	fam(l, "creative", "Come up with a slogan for {business}.", "Give me 10 name ideas for {business}.", "Brainstorm taglines for {business}; make them playful.")
	fam(l, "creative", "Write a bedtime story for a {n:3-8}-year-old about {subject}.", "My kid wants a story about {animal} who go on an adventure. Make it gentle for bedtime.", "Make up a fairy tale about {subject} for my daughter.")
	fam(l, "creative", "Write a motivational speech for {audience}.", "Write a pep talk for {audience}.", "Write an inspiring opening for a keynote for {audience}.")
	fam(l, "creative", "Write a poem explaining {techtopic}.", "Explain {techtopic} as a rhyming poem for kids.", "Write a sonnet about debugging at 3am.")
	fam(l, "creative", "Write a funny tweet about {techtopic}.", "Write a joke about {techterm}.", "Give me a few puns about {techtopic} for our team channel.")
	fam(l, "creative", "Invent a myth explaining why {animal} behave the way they do.", "Write a fable with a moral about honesty, starring {animal}.", "Write a legend about how the first {hobby} club was founded.")
	fam(l, "creative", "Write a rap verse about {subject}.", "Write a rap battle between {techtopic} and the old way of doing things.", "Write a sea shanty about {subject}.")
	fam(l, "creative", "Write a conference talk abstract about {techtopic}.", "Write a catchy title and abstract for my meetup talk on {techtopic}.", "Write a CFP submission for a talk about our journey with {techtopic}.")
	fam(l, "creative", "Write a newsletter intro for {business} customers about {event}.", "Write an email inviting the whole team to {event}, fun tone.", "Write a party invitation for {event}.")
	fam(l, "creative", "Write a thank-you note to {person} for {reason}.", "Write a heartfelt card message for {person}, thanking them for {reason}.", "Write a short apology letter to {person}; I forgot their birthday.")
	fam(l, "creative", "Describe a fictional planet where {subject}.", "Build a fantasy world with three kingdoms and a magic system based on music.", "Create a character sheet for a villain who used to be a {hobby} champion.")
	fam(l, "creative", "Write a persuasive essay arguing that cities should ban cars from their centres.", "Write an op-ed on why remote work is here to stay.", "Write a speech for a school debate arguing for a four-day week.")
	fam(l, "creative", "Write a children's rhyme that teaches kids to wash their hands.", "Write a short song to help kids remember the planets.", "Write a counting rhyme about {animal}.")
	fam(l, "creative", "Write an eulogy for my grandfather, a carpenter who loved {hobby}.", "Write a tribute for our retiring teacher {name}.", "Write a short memorial message for a beloved family dog.")
	fam(l, "creative", "Here are my notes for a toast: met in college, road trip to Spain, she burnt the paella, now married 10 years. Turn them into a warm, funny toast.", "Using these facts, write a story: a girl, a broken radio, a storm, and a message from her future self.")
	fam(l, "creative", "Write a story about a developer whose code comes alive at midnight.", "Write a short sci-fi story about an AI that refuses to route requests.", "Write a ghost story set in a data centre.")
	fam(l, "creative", "Write a cover letter for a junior {techterm} engineer position. I'm a career changer from teaching.", "Write my personal statement for a master's in design. I grew up in a small fishing town.")
	fam(l, "creative", "Write a sonnet about {subject}.", "Write a villanelle about {subject}.", "Write a free-verse poem about {city} at night.")
	fam(l, "creative", "As {company}'s assistant, write a short holiday greeting we can post on social media.", "Write a welcome message for new members of our {hobby} club.", "Write a fun out-of-office auto-reply.")

	// ---- chat ----
	fam(l, "chat", "What's the capital of {country}?", "which city is the capital of {country}", "Capital of {country}?")
	fam(l, "chat", "Hi! How's it going?", "hey there", "Good morning! Hope you're well.", "hello, who am I talking to?")
	fam(l, "chat", "What does {acronym} stand for?", "What does {acronym} mean?", "quick one, {acronym} = ?")
	fam(l, "chat", "What is {techterm}, in one sentence?", "Can you explain what {techterm} is like I'm five?", "In simple terms, what's {techterm}?")
	fam(l, "chat", "Can you recommend a good book about {topic}?", "Any podcast recommendations on {topic}?", "What should I read first if I'm interested in {topic}?")
	fam(l, "chat", "Is it safe to eat {food} a few days after the expiry date?", "How long does {food} keep in the fridge?", "Can I freeze {food}?")
	fam(l, "chat", "Who wrote {book}?", "When was {book} published?", "Is {book} worth reading?")
	fam(l, "chat", "Thanks, that helped a lot!", "Perfect, thank you.", "ok great, appreciate it", "Thanks! Have a nice day.")
	fam(l, "chat", "What time zone is {city} in?", "What's the weather usually like in {city} in {month}?", "What language do they speak in {city}?")
	fam(l, "chat", "Any tips for staying focused while working from home?", "How can I sleep better?", "How do I stop procrastinating?")
	fam(l, "chat", "Is Python or JavaScript better for a complete beginner?", "Should I learn Rust or Go first? Just your opinion.", "Is a Mac or a Windows laptop better for a student?")
	fam(l, "chat", "Do I need a visa to visit {country} as a tourist?", "What's the best time of year to visit {country}?", "Is tipping expected in {country}?")
	fam(l, "chat", "How long do I boil pasta for al dente?", "What can I use instead of butter in baking?", "Is it OK to leave cooked rice out overnight?")
	fam(l, "chat", "My laptop fan is really loud, is that normal?", "My phone battery drains fast since the update. Is that common?", "My wifi keeps dropping in the evening. What usually causes that?")
	fam(l, "chat", "Tell me a fun fact about {animal}.", "How long do {animal} live?", "Are {animal} smart?")
	fam(l, "chat", "What's the fastest way to get good at {skill}?", "How long does it take to get decent at {skill}?", "Is {n:30-60} too old to start learning {skill}?")
	fam(l, "chat", "How do I reset my router?", "How do I take a screenshot on Windows?", "How do I turn on dark mode on my iPhone?")
	fam(l, "chat", "What does HTTP error 404 mean?", "What does 'the server returned 503' mean for me as a user?", "Why does a website say my connection is not private?")
	fam(l, "chat", "Which is healthier, {food} or oatmeal?", "Is green tea good for you?", "How much water should I drink a day?")
	fam(l, "chat", "What does a product manager actually do?", "What's the difference between a data scientist and a data engineer?", "Is DevOps a job title or a practice?")
	fam(l, "chat", "Can you help me with something?", "Are you able to browse the internet?", "What can you do?", "Do you remember what I told you yesterday?")
	fam(l, "chat", "What's the difference between RAM and storage, simply?", "Is 16 GB of RAM enough for gaming?", "What's the difference between wifi and the internet?")
	fam(l, "chat", "Who won the 2018 World Cup?", "When did the first Moon landing happen?", "Who painted the Mona Lisa?", "How tall is Mount Everest?")
	fam(l, "chat", "I'm feeling a bit stressed about my exams.", "I just got the job!!", "I had a rough day at work.", "I'm bored, talk to me.")
	fam(l, "chat", "Does Kubernetes cost money?", "Is Docker free for personal use?", "Is GitHub owned by Microsoft?", "Do I need a GPU to use an LLM?")
	fam(l, "chat", "Hi, I'm a customer of {company}. What are your opening hours?", "How do I contact a human at {company}?", "Does {company} have an app?")
	fam(l, "chat", "What's your favourite movie?", "Do you like music?", "If you could travel anywhere, where would you go?")
	fam(l, "chat", "Where should I go for dinner in {city}, any kind of food is fine?", "What should I see in {city} if I only have one day?", "Is {city} expensive?")
	fam(l, "chat", "What is a good gift for a 10-year-old?", "What should I get my dad for his birthday? He likes {hobby}.", "What's a nice housewarming gift?")
	fam(l, "chat", "Some background: I've been a nurse for 12 years, I'm thinking about switching careers, I like computers but I've never coded, and I have two kids so evenings are busy. Anyway, my actual question is just: is it normal to feel nervous about changing careers at 40?", "Context: we're a small team of 5, we use Slack and Google Docs, and our manager just left. Not looking for anything big — just, is it normal for a team to feel a bit lost after a manager leaves?")

	// ---- follow-ups (only after earlier turns; the latest turn decides) ----
	follow(l, "extraction", "Now translate that into {tlang}.", "Summarise your last answer in one sentence.", "Can you turn that into a bullet list?", "Put that in a table please.")
	follow(l, "creative", "Nice. Now write a short poem about it.", "Turn that into a bedtime story for my son.", "Cool, now write a catchy slogan based on that.")
	follow(l, "code", "Can you put that into a Python script?", "Now write the code for it in {plang}.", "Great, can you give me a bash script that automates this?")
	follow(l, "reasoning", "OK, and if it costs 4.50 each and I need 17 of them plus 8% tax, what's the total? Show the math.", "Now, if the numbers double, does your conclusion still hold? Prove it.", "Given that, what's the probability that all three happen? Walk me through it.")
	follow(l, "chat", "Thanks! What's your name by the way?", "Haha ok. How's your day going?", "Cool. Is it going to rain tomorrow, do you think?")
}
