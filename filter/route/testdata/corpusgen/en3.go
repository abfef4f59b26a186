package main

// A third English batch: conversation closings and small talk after a task,
// and simple answers in technical settings.
func registerEN3() {
	const l = "en"
	fam(l, "chat", "Thanks a bunch, that's all for today. Bye!", "Great, I'm done for now. See you tomorrow.", "Cheers, talk later!", "That's everything, thank you so much. Good night!")
	fam(l, "chat", "Awesome, it works now. You're a lifesaver.", "Finally it compiles, thank you!", "Ok it worked, appreciate the help.", "Nice, problem solved. Thanks again.")
	fam(l, "chat", "Haha, nice one.", "lol ok", "Interesting, I didn't know that.", "Wow, really?", "Makes sense.")
	fam(l, "chat", "Sorry, I have to go now, my meeting starts.", "brb, getting coffee", "Let's continue this later, I'm tired.", "I'll try that tomorrow and let you know.")
	fam(l, "chat", "How's your day going?", "Do you ever get tired of answering questions?", "What's your favourite programming language, honestly?", "Do you prefer cats or dogs?")
	fam(l, "chat", "Is it normal for {techterm} to be this confusing at first?", "Do most developers use Linux?", "Is it worth getting a second monitor for coding?", "Should I use tabs or spaces? Just your opinion.")
	fam(l, "chat", "Which is more popular, React or Vue?", "Is Java still used much these days?", "Is Python slow?", "Are code reviews common in most companies?")
	fam(l, "chat", "What's a good way to unwind after a long day at work?", "Any tips for my first day at a new job?", "How do I ask my boss for a raise?", "How do I make friends in a new city?")
	fam(l, "chat", "Quick question: what's the capital of {country}?", "Quick question — is it {weekday} today where you are?", "Quick one: how many ounces in a pound?", "Quick question, what does ASAP stand for?")
	fam(l, "chat", "What's the best way to store fresh herbs?", "How do I get a red wine stain out of a shirt?", "How often should I water a cactus?", "What temperature should my fridge be?")
	follow(l, "chat", "Thanks a lot, have a nice evening!", "Perfect, that's exactly what I needed. Bye!", "Cool, thanks. Anything fun planned for the weekend?", "Ok great. How are you doing, by the way?")
	follow(l, "chat", "Got it, thanks!", "Alright, that makes sense now.", "Hmm ok. Is that the usual way people do it?")
}

// Inline code without fences, and "this" questions about provided code.
func registerEN4() {
	const l = "en"
	addPools("*", map[string][]string{
		"inline": {
			"x = x++ + ++x;", "if (a = b) { return true; }", "for i in range(len(xs)): xs.remove(xs[i])",
			"const total = items.reduce((a, b) => a + b.price);", "SELECT name FROM users WHERE age > '30'",
			"def f(xs=[]): xs.append(1); return xs", "let v: Vec<i32> = Vec::new(); v.push(1);",
			"if err != nil { return nil }", "strcmp(a, b) == true", "while (i < n); i++;",
			"int mid = (lo + hi) / 2;", "return a.equals(b) || a == null;", "df[df.age > 30]['name'] = 'x'",
			"git reset --hard HEAD~1", "chmod 777 -R /", "fn sub(a: u32, b: u32) -> u32 { a - b }",
		},
	})
	fam(l, "code", "Review: {inline}", "Is this right? {inline}", "Code review, one line: {inline}", "Any problem with {inline} ?")
	fam(l, "code", "Why does {inline} not do what I expect?", "What's wrong with this line: {inline}", "Is {inline} a bug?", "Explain what {inline} does.")
	fam(l, "code", "Why does this {crash|panic|hang|deadlock|leak memory}?\n{snippet}", "What does this error mean?\n{error}", "Is this thread-safe?\n{snippet}", "Does this handle the empty case?\n{snippet}")
}

// A pasted error alone asks for a fix: code.
func registerEN5() {
	fam("en", "code", "{error}", "```\n{error}\n```", "{error}\n\nhelp", "getting this: {error}", "{log}\n\nwhy is my service doing this and what do I change in the code?")
	fam("zh", "code", "{error}\n\n怎么办", "```\n{error}\n```\n求助")
	fam("ja", "code", "{error}\n\nどうすれば？", "```\n{error}\n```\n助けて")
	fam("ru", "code", "{error}\n\nчто делать?", "```\n{error}\n```\nпомогите")
	fam("es", "code", "{error}\n\n¿qué hago?", "```\n{error}\n```\nayuda")
}
