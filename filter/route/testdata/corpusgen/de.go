package main

func registerDE() {
	const l = "de"
	wraps[l] = wrap{
		systems: []string{"Du bist ein hilfreicher Assistent.", "Sie sind der Kundenservice-Assistent von {company}. Antworten Sie höflich.", "Du bist ein erfahrener Softwareentwickler.", "Antworte immer auf Deutsch und knapp.", "Du bist Mathelehrer; erkläre deinen Lösungsweg."},
		replies: []string{"Klar! Hier: {reply_body}", "Gern. {reply_body}", "Erledigt. {reply_body} Noch etwas?"},
	}
	addPools(l, map[string][]string{
		"tlang":      {"Englisch", "Französisch", "Spanisch", "Italienisch", "Japanisch", "Chinesisch"},
		"company":    {"Nordbank", "Alpen Reisen", "GrünMarkt", "Stadtwerke Süd"},
		"reply_body": {"Die Antwort ist 42.", "Ich habe einen ersten Entwurf geschrieben.", "Hier ist die korrigierte Fassung.", "Ich habe die Hauptpunkte in drei Stichpunkten zusammengefasst."},
		"ctask":      {"eine verkettete Liste umzukehren", "eine CSV-Datei einzulesen und eine Spalte zu summieren", "eine E-Mail-Adresse zu prüfen", "eine binäre Suche zu implementieren", "JSON zu parsen", "zu prüfen, ob ein String ein Palindrom ist", "einen HTTP-Request mit exponentiellem Backoff zu wiederholen"},
		"doc": {
			"Der Stadtrat hat am Dienstag mit 31 zu 12 Stimmen beschlossen, das Radwegenetz um 12 Kilometer zu erweitern. Oberbürgermeisterin Anna Keller sagte, die Arbeiten beginnen im April und kosten rund 4,2 Millionen Euro, größtenteils vom Land finanziert. Händler fürchten den Wegfall von Parkplätzen.",
			"Hallo zusammen, der für den 14. September geplante Launch verschiebt sich auf den 28., weil der Zahlungsanbieter mehr Zeit für die Zertifizierung braucht. Das Marketing soll die E-Mail-Kampagne pausieren. Lukas aktualisiert die Statusseite, Miriam übernimmt den neuen Testplan.",
			"Ich habe die Kopfhörer vor drei Wochen gekauft. Der Klang ist super, aber der rechte Hörer knarzt seit einer Woche und der Support hat auf zwei E-Mails nicht reagiert. Keine Empfehlung.",
			"Protokoll vom 12. März. Anwesend: Jonas, Lea, Felix. Beschluss: Der Blog zieht auf das neue CMS um. Lea exportiert die alten Beiträge bis zum 20., Felix erstellt die Weiterleitungstabelle. Offen: Wer zahlt den zusätzlichen Speicher?",
		},
		"subject":  {"einen Leuchtturmwärter, der eine Flaschenpost findet", "den ersten Schnee", "einen Roboter, der malen lernt", "eine Katze mit einer Buchhandlung", "einen Zeitreisenden im Jahr 1920", "den Mond, der sich ins Meer verliebt"},
		"question": {"Wie lange fährt der ICE von Berlin nach München?", "Was ist der höchste Berg Deutschlands?", "Warum mögen Katzen Kartons?", "Wie gelingt ein guter Kartoffelsalat?"},
		"techterm": {"Kubernetes", "Blockchain", "die Cloud", "maschinelles Lernen", "eine Firewall"},
	})
	fam(l, "code", "Schreib eine {plang}-Funktion, um {ctask}.", "Wie kann ich in {plang} {ctask}? Bitte mit Codebeispiel.", "Ich brauche {plang}-Code, um {ctask}, mit Kommentaren.")
	fam(l, "code", "Behebe den Fehler in diesem Code:\n{snippet}", "Warum funktioniert dieser Code nicht?\n{snippet}")
	fam(l, "code", "Ich bekomme diesen Fehler:\n{error}\nWas mache ich falsch?", "{error}\nwie behebe ich das?")
	fam(l, "code", "Erklär mir Zeile für Zeile, was dieser Code macht:\n{snippet}", "Was macht dieses Snippet?\n{snippet}")
	fam(l, "code", "Schreib eine SQL-Abfrage, die pro Abteilung das zweithöchste Gehalt liefert.", "Diese Abfrage braucht 30 Sekunden, optimier sie:\n{sqlq}", "Schreib Unit-Tests für diese Funktion:\n{snippet}")
	fam(l, "code", "Schreib ein Dockerfile für eine {plang}-Webanwendung.", "Schreib ein Bash-Skript, das alle .log-Dateien älter als eine Woche komprimiert.", "Refaktoriere diesen Code, damit er lesbarer wird:\n{snippet}")
	fam(l, "code", "Schreib ein Kommandozeilen-Tool in {plang}, das Dateien nach Datum umbenennt.", "Füge diesem Code eine ordentliche Fehlerbehandlung hinzu:\n{snippet}")

	fam(l, "reasoning", "Kurze Frage: Wenn 5 Maschinen in 5 Minuten 5 Teile herstellen, wie lange brauchen 100 Maschinen für 100 Teile?", "Schnelle Frage: Schläger und Ball kosten zusammen 1,10 €, der Schläger kostet 1 € mehr als der Ball. Was kostet der Ball?")
	fam(l, "reasoning", "Ich schreibe einen Roman. Die Heldin ist 1990 {n:20-40} Jahre alt und bekommt mit {n:22-35} ihre Tochter. Wie alt ist die Tochter 2025? Bitte rechne nach.", "In meiner Geschichte verkauft ein Händler jeden Tag die Hälfte seiner restlichen Ware und noch {n:1-4} Stück dazu; am vierten Tag ist alles weg. Wie viele hatte er am Anfang?")
	fam(l, "reasoning", "Beweise, dass die Wurzel aus 2 irrational ist.", "Beweise, dass die Summe zweier ungerader Zahlen gerade ist.", "Beweise per Induktion, dass 1+3+5+…+(2n−1) = n².")
	fam(l, "reasoning", "Wie hoch ist die Wahrscheinlichkeit, mit zwei Würfeln mindestens {n:8-11} zu werfen?", "Wenn ich {n:1-50}.000 € zu {n:2-7} % Zinseszins anlege, wie viel habe ich nach {n:3-20} Jahren? Zeig den Rechenweg.")
	fam(l, "reasoning", "Ich habe die Aufgaben A, B, C, D. C muss vor A kommen, B darf nicht die erste sein und D folgt direkt auf B. Welche Reihenfolgen sind möglich?", "Drei Freunde haben eine Katze, einen Hund und einen Papagei. Mia hat nicht den Hund, Ben hat weder die Katze noch den Hund. Wer hat was?")
	fam(l, "reasoning", "Hallo, ich hatte den Tarif für {n:10-30} € im Monat und bin am {n:5-25}. Tag eines 30-Tage-Zyklus in den Tarif für {n:35-80} € gewechselt. Wie hoch müsste meine Rechnung diesen Monat sein? Bitte nachrechnen.", "Ein Zug fährt um {n:6-11} Uhr mit {n:60-90} km/h los, ein zweiter eine Stunde später mit {n:91-130} km/h auf derselben Strecke. Wann holt er ihn ein?")

	fam(l, "extraction", "Fass das in zwei Sätzen zusammen:\n\n{doc}", "Gib mir eine kurze Zusammenfassung:\n{doc}", "Was sind die Kernpunkte dieses Textes?\n{doc}")
	fam(l, "extraction", "Übersetze ins {tlang}:\n{doc}", "Übersetze diese E-Mail ins Englische:\n{doc}")
	fam(l, "extraction", "Extrahiere alle Namen, Daten und Beträge aus dem Text als JSON:\n{doc}", "Welche Aufgaben und Verantwortlichen stehen im Protokoll?\n{doc}")
	fam(l, "extraction", "Ist diese Bewertung positiv, negativ oder neutral?\n{doc}", "In welche Kategorie gehört dieses Ticket (Abrechnung, Technik, Konto, Sonstiges)? „Mir wurde das Abo zweimal abgebucht.“")
	fam(l, "extraction", "Korrigiere Rechtschreibung und Grammatik: Gestern sind wir ins Kino gegangen und der Film war wirklich gut aber etwas zu lange.", "Formuliere diesen Text förmlicher:\n{doc}")
	fam(l, "extraction", "Liste aus diesem Log die Uhrzeit jeder ERROR-Zeile auf:\n{log}", "Fass diese E-Mail zusammen, den Code musst du nicht erklären:\n{codedoc}")

	fam(l, "creative", "Schreib ein Gedicht über {subject}.", "Schreib mir ein paar Verse über {subject}.", "Schreib ein Gedicht über einen Herbstabend.")
	fam(l, "creative", "Schreib eine Kurzgeschichte über {subject}.", "Erfinde eine Gutenachtgeschichte über {subject}.")
	fam(l, "creative", "Gib mir zehn Namen für ein neues Café.", "Erfinde einen Werbeslogan für ein Solar-Ladegerät.", "Schreib den Neujahrsgruß von {company} für Social Media.")
	fam(l, "creative", "Schreib einen Blogartikel, der Einsteigern {techterm} vorstellt.", "Schreib eine witzige Kolumne darüber, wie wir {techterm} eingeführt haben.")
	fam(l, "creative", "Schreib eine Hochzeitsrede für meinen besten Freund; er liebt das Angeln.", "Schreib einen Dankesbrief an meine Lehrerin.")
	fam(l, "creative", "Schreib einen Dialog zwischen zwei alten Freunden, die sich am Bahnhof wiedersehen.", "Schreib einen Songtext über eine Entwicklerin, die nachts arbeitet.", "Erfinde eine Fabel mit einem Drachen und einem Mädchen.")

	fam(l, "chat", "Hallo! Wie geht's?", "Guten Morgen!", "Hi, ist da jemand?")
	fam(l, "chat", "{question}", "Sag mal, {question}")
	fam(l, "chat", "Was ist {techterm}? Kurz bitte.", "Was ist eine API, in einem Satz?", "Was bedeutet Fehler 404?")
	fam(l, "chat", "Danke, das hat sehr geholfen!", "Alles klar, danke.")
	fam(l, "chat", "Kannst du mir einen Science-Fiction-Roman empfehlen?", "Was sollte ich in Hamburg an einem Tag ansehen?", "Wie höre ich auf zu prokrastinieren?")
	fam(l, "chat", "Python oder Java für Anfänger?", "Ist Docker kostenlos?", "Kannst du im Internet suchen?")

	follow(l, "extraction", "Übersetze deine Antwort ins Englische.", "Fass deine letzte Antwort in einem Satz zusammen.")
	follow(l, "creative", "Super. Schreib jetzt ein kurzes Gedicht darüber.", "Mach daraus eine Kindergeschichte.")
	follow(l, "code", "Kannst du daraus ein Python-Skript machen?", "Setz das in {plang} um.")
	follow(l, "reasoning", "Und wenn ein Stück 4,50 € kostet, ich 17 brauche und 19 % MwSt. dazukommen – wie viel ist das insgesamt? Zeig den Rechenweg.")
	follow(l, "chat", "Alles klar. Und wie heißt du?")
}
