package main

// A second English batch: conceptual code questions, notation-heavy
// reasoning, number-heavy texts to transform, trivia chat.
func registerEN2() {
	const l = "en"
	addPools("*", map[string][]string{
		"cppconcept": {"`std::move`", "a virtual destructor", "`const` after a method name", "RAII", "`volatile` in C", "a Go interface nil check", "Python's GIL", "`async`/`await` in JavaScript", "Rust lifetimes", "a Java `synchronized` block", "`__slots__` in Python", "a closure in JavaScript", "SQL window functions", "goroutine leaks"},
		"mathexpr":   {"∫ x² e^x dx", "∫₀^π sin²(x) dx", "d/dx [ln(x² + 1)]", "lim_{x→0} (1 − cos x)/x²", "∑_{k=1}^{n} k²", "the roots of 3x² − 7x + 2 = 0", "f(x) = x³ − 6x² + 9x on [0, 4]", "the determinant of [[1,2,3],[0,1,4],[5,6,0]]", "P(A ∪ B) when P(A)=0.3, P(B)=0.5, P(A∩B)=0.1", "the gcd of 1071 and 462"},
		"numdoc": {
			"Revenue for the quarter was $48.2M, up 12% year over year, while operating costs rose 7% to $31.5M. The company added 1,240 enterprise customers and now has 18,900 in total. Churn fell from 2.1% to 1.7%. Guidance for next quarter is $50–52M.",
			"Trial results: 412 patients were enrolled; 206 received the drug and 206 a placebo. After 24 weeks, 61% of the treatment group and 38% of the placebo group reported improvement (p < 0.01). Side effects were mild in 14% of cases.",
			"The 2023 survey of 3,500 developers found that 64% use containers in production, 41% run Kubernetes, and 22% have adopted WebAssembly in some form. Median salary rose 5.5% to $118,000.",
			"Order #88213 — 3 × USB-C cable ($9.99 each), 1 × laptop stand ($34.50), shipping $4.95, tax 8.25%. Paid by card ending 4417 on 2024-02-11. Delivery expected between Feb 14 and Feb 16.",
		},
		"trivia": {"the Eiffel Tower", "the Roman Empire", "black holes", "coffee", "the Olympics", "volcanoes", "the Great Wall of China", "honey", "penguins"},
	})
	fam(l, "code", "What does {cppconcept} actually do? When should I use it?", "Explain {cppconcept} with a short code example.", "I never understood {cppconcept}. Can you show me in code?")
	fam(l, "code", "Write a Kubernetes Deployment YAML for {uigoal}.", "Can you write a docker-compose file with postgres, redis and a {plang} app?", "Write a Helm values file and template for a service with 3 replicas.")
	fam(l, "code", "The linter says '{lintmsg}' in my {plang} code. What does it mean and how do I fix it?", "golangci-lint reports: {lintmsg}. Here is the function:\n{snippet}", "ESLint warning: {lintmsg}. How do I change the code?")
	fam(l, "code", "Here is my config, why does the service not start?\n{yaml}", "My CI job fails at the deploy step with {error}. What should I change in the pipeline script?", "Why does `git rebase` say there are conflicts in files I never touched, and what commands fix it?")
	fam(l, "code", "Write a function signature and implementation for: given a list of {ds_items}, return the top k by score. Use {plang}.", "Implement pagination with cursors in {plang} for a list of {ds_items}.", "Write a {plang} generic function that groups {ds_items} by a key.")
	fam(l, "code", "How do I connect to Postgres from {plang} and run a parameterized query?", "Show me how to read environment variables with defaults in {plang}.", "How do I write a simple HTTP server with graceful shutdown in {plang}?")
	fam(l, "code", "Convert this loop into a list comprehension / stream expression:\n{snippet}", "Vectorise this with numpy instead of a loop:\n```python\nout = []\nfor i in range(len(a)):\n    out.append(a[i] * b[i] + 1)\n```", "Rewrite this recursion iteratively:\n{snippet}")
	fam(l, "code", "What is the time complexity of this function, and can you make it faster?\n{snippet}", "Profile-guided question: this {plang} function is O(n²). Rewrite it in O(n log n):\n{snippet}")
	addPools(l, map[string][]string{
		"uimsg":    {"\"Hello {{name}}, your order {{id}} has shipped.\"", "\"You have {count} new messages\"", "\"Welcome back, %s!\""},
		"lintmsg":  {"ineffectual assignment to err", "exported function should have comment", "variable 'x' is assigned a value but never used", "possible nil pointer dereference", "unused import", "shadow: declaration of 'err' shadows declaration"},
		"ds_items": {"products", "search results", "log entries", "users", "transactions"},
	})

	fam(l, "reasoning", "Compute {mathexpr}.", "Evaluate {mathexpr}, showing each step.", "Find {mathexpr}.", "Work out {mathexpr} by hand.")
	fam(l, "reasoning", "Minimize f(x, y) = x² + y² subject to x + {n:2-5}y = {n:3-12} using Lagrange multipliers.", "Maximise the area of a rectangle with perimeter {n:20-80} m. Justify that it's a maximum.", "A farmer has {n:100-900} m of fence to enclose a field along a river (no fence on the river side). What dimensions maximise the area?")
	fam(l, "reasoning", "Is {n:1000-9999} prime? Explain how you check.", "What is the last digit of 7^{n:100-999}?", "How many trailing zeros does {n:20-100}! have?", "What is the remainder when 2^{n:50-200} is divided by 7?")
	fam(l, "reasoning", "Three coins are tossed. What is the probability of at least two heads? Explain.", "A bag has {n:3-9} red and {n:3-9} blue balls. I draw two without replacement. What's the chance they're the same colour?", "If the chance of rain is 30% each day, what's the probability of at least one rainy day in a {n:3-7}-day trip?")
	fam(l, "reasoning", "My team velocity is {n:20-40} points per sprint and the backlog has {n:150-400} points, but {n:10-30}% of each sprint goes to bugs. How many two-week sprints until we're done?", "Our database grows {n:2-9} GB a week and the disk has {n:100-500} GB free. We alert at 80% full of a 1 TB disk that is now 45% used. When will the alert fire?", "A cache hit costs 1 ms and a miss 40 ms. What hit rate do we need for an average under {n:5-15} ms?")
	fam(l, "reasoning", "Which is the better deal: a {n:10-30}% discount followed by a ${n:5-20} coupon, or the coupon first and then the discount, on a ${n:60-300} item?", "Is it better to pay off a {n:15-25}% credit card or invest at an expected {n:5-9}% return? Reason it through with numbers.", "Leasing costs ${n:250-450}/month for 36 months plus ${n:2-4},000 down; buying costs ${n:25-40},000 and resells for half after 3 years. Which is cheaper?")
	fam(l, "reasoning", "Hey, small favour — in my fantasy novel a caravan travels {n:20-40} km a day and must cover {n:300-900} km, resting every fourth day. How many days does the journey take?", "Worldbuilding check: my planet's year is {n:200-500} days and a festival happens every 7 years of theirs. How many Earth years is that if their day is 30 hours?", "In my screenplay, a bomb timer starts at 45 minutes and the hero needs 12 minutes per floor for {n:2-4} floors plus 9 minutes to defuse. Does he make it?")
	fam(l, "reasoning", "If all A are B and no B are C, can any A be C? Explain.", "Every student who passed studied. Sam studied. Did Sam pass? What can we conclude?", "Premise 1: some doctors are runners. Premise 2: all runners are early risers. What follows about doctors?")
	fam(l, "reasoning", "Plan the order to cook a dinner where the roast needs 90 minutes, potatoes 45, the sauce 20 and must be last, and I have one oven and two burners. Dinner at 19:00 — when does each start?", "I have {n:3-6} exams in 10 days, each needs 2 full days of study and I work on day 4 and 8. Make a feasible study schedule.")
	fam(l, "reasoning", "Why is the sum of the angles of a triangle 180 degrees? Give a proof.", "Explain why 0.999... equals 1 with a rigorous argument.", "Why can't you divide by zero? Give a mathematical argument, not just a rule.")

	fam(l, "extraction", "Summarise these results in one sentence:\n\n{numdoc}", "What are the key numbers in this report? List them.\n\n{numdoc}", "Turn this into three bullet points for a slide:\n\n{numdoc}")
	fam(l, "extraction", "Extract every number with its meaning into a table:\n\n{numdoc}", "Pull the figures out of this as JSON (metric, value, unit):\n{numdoc}", "From this text, what percentages are mentioned and what do they refer to?\n{numdoc}")
	fam(l, "extraction", "Tag this article with 5 keywords: '{numdoc}'", "Categorise this text as finance, health, tech or retail:\n{numdoc}", "Which industry is this about? One word.\n{numdoc}")
	fam(l, "extraction", "Here is the order confirmation; extract the items, quantities and the total:\n{numdoc}", "Put the line items from this receipt in CSV:\n{numdoc}")
	fam(l, "extraction", "Summarise this code review thread in 3 bullets:\n\nAna: the retry loop in client.go never backs off, see `for { resp, err = c.Do(req) }`.\nBen: agreed, also we swallow the error.\nAna: let's use exponential backoff capped at 30s.\nBen: ok, I'll push a fix and add a test.", "Condense this incident chat into a timeline:\n\n09:02 alice: api 5xx spike\n09:05 bob: rolled back deploy 4411\n09:09 alice: errors dropping\n09:20 bob: root cause = bad feature flag `new_pricing=true`\n09:31 alice: closed")
	fam(l, "extraction", "Translate this UI text into {tlang}: \"Your session has expired. Please sign in again to continue.\"", "Localise these button labels into {tlang}: Save, Cancel, Delete account, Try again", "Translate to {tlang}, keep the placeholders: {uimsg}")
	fam(l, "extraction", "Classify each of these tweets as complaint, praise or question:\n1. Love the new update!\n2. Why is the app so slow today?\n3. My card was charged twice, fix this.\n4. Does the premium plan include offline mode?", "Sort these emails into urgent / not urgent:\n- Server down in prod\n- Lunch menu for Friday\n- Contract needs signature by today\n- Newsletter: 10 tips")
	fam(l, "extraction", "Convert this CSV into a JSON array:\nname,age,city\nAna,31,Porto\nLee,27,Busan\nOmar,45,Cairo", "Convert this table to YAML:\n| service | port | replicas |\n|---|---|---|\n| api | 8080 | 3 |\n| worker | 9000 | 2 |", "Reformat these dates as DD.MM.YYYY: 2024-03-01, 2023-12-25, 2025-07-04")
	fam(l, "extraction", "Summarise this function's docstring into one line for the changelog:\n\"\"\"Fetch all invoices for a customer, following pagination cursors, retrying on 429 with jitter, and returning them sorted by due date.\"\"\"", "Extract the parameter names and their descriptions from this docstring:\n\"\"\"\nArgs:\n  path: file to read\n  encoding: text encoding, default utf-8\n  strict: raise on decode errors\n\"\"\"")
	fam(l, "extraction", "Here's a job posting. Extract: title, location, salary range, required skills.\n\n\"Senior Data Engineer (Berlin or remote EU). €85–105k. You know Python, Spark and Airflow; Kafka is a plus. 5+ years of experience.\"", "From this listing, pull out price, size, rooms and address:\n\"Bright 3-room flat, 78 m², 2nd floor, Rua das Flores 12, Lisbon. €1,450/month, available from June.\"")

	fam(l, "creative", "Write a short story where {subject}, told in the second person.", "Write a 100-word micro story about {subject}.", "Write a story about {subject} that ends with a single line of dialogue.")
	fam(l, "creative", "Write a product launch email for {product}, enthusiastic but not cheesy.", "Write three subject lines and a short body for a promo email about {product}.", "Write an App Store description for {product}.")
	fam(l, "creative", "Write an original explainer article on {techtopic} for our company blog, with an engaging intro.", "Write the script for a 2-minute YouTube video introducing {techtopic}.", "Write a short Medium post about my first month learning {techtopic}.")
	fam(l, "creative", "Write a poem about a server that never sleeps.", "Write an ode to the humble spreadsheet.", "Write a love poem from a compiler to a programmer.")
	fam(l, "creative", "Write a witty birthday message for my coworker {name}, who loves {hobby}.", "Write a funny card for my sister's 30th.", "Write a short graduation message for my nephew.")
	fam(l, "creative", "Come up with a plot for a mystery novel set in {place}.", "Pitch me three movie ideas about {subject}.", "Outline a short story about {subject} in five beats.")
	fam(l, "creative", "Write a character monologue for a villain who believes they are the hero.", "Write the inner thoughts of a cat watching its owner work from home.", "Write a diary entry from a lighthouse keeper in 1890.")
	fam(l, "creative", "Write a jingle for {business}.", "Write a radio ad script (30 seconds) for {business}.", "Write an Instagram caption for {business}'s grand opening.")
	fam(l, "creative", "Write a speech the CTO could give at the all-hands celebrating our migration to {techtopic}.", "Write a farewell message from the team to a departing engineer who built our {techtopic} platform.")
	fam(l, "creative", "Write a bedtime story that explains {techtopic} to a curious child.", "Write a fairy tale where the dragon is actually {techterm}.")

	fam(l, "chat", "Say something cool about {trivia}.", "Give me a fun fact about {trivia}.", "What's the most surprising thing about {trivia}?")
	fam(l, "chat", "Is it worth learning {skill} in 2025?", "What's a good first step to get into {topic}?", "Where can I find free resources for {skill}?")
	fam(l, "chat", "What's the difference between {acronym} and an API, roughly?", "Is {techterm} the same thing as the cloud?", "Do I need to know math to work with {techterm}?")
	fam(l, "chat", "My cat keeps knocking things off the table. Why do they do that?", "Why do onions make you cry?", "Why is the sea salty?")
	fam(l, "chat", "How many hours of sleep does an adult need?", "What's a normal resting heart rate?", "How often should I replace my toothbrush?")
	fam(l, "chat", "Can you recommend a laptop for programming under $1000?", "Which phone has the best camera right now?", "Is a mechanical keyboard worth it?")
	fam(l, "chat", "What's the etiquette for replying to a work email on a weekend?", "Is it rude to not turn on my camera in meetings?", "How do I politely say no to extra work?")
	fam(l, "chat", "Hi, I'm new here. How does this work?", "Can I ask you about anything?", "Are you a real person?")
	fam(l, "chat", "Which programming language is used the most?", "Is Linux better than Windows for servers?", "What does a DevOps engineer earn, roughly?")
	fam(l, "chat", "Any ideas for a rainy Sunday at home?", "What's a good movie for a family night?", "What should I do this weekend in {city}?")
}
