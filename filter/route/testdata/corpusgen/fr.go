package main

func registerFR() {
	const l = "fr"
	wraps[l] = wrap{
		systems: []string{"Tu es un assistant serviable.", "Vous êtes l'assistant du service client de {company}. Répondez poliment.", "Tu es un ingénieur logiciel expérimenté.", "Réponds toujours en français, brièvement.", "Tu es professeur de mathématiques ; explique ton raisonnement."},
		replies: []string{"Bien sûr ! Voici : {reply_body}", "Avec plaisir. {reply_body}", "C'est fait. {reply_body} Autre chose ?"},
	}
	addPools(l, map[string][]string{
		"tlang":      {"anglais", "espagnol", "allemand", "italien", "japonais", "chinois"},
		"company":    {"Banque Azur", "Voyages Horizon", "MarchéVert", "Énergie Claire"},
		"reply_body": {"La réponse est 42.", "J'ai rédigé un premier jet.", "Voici la version corrigée.", "J'ai résumé les points principaux en trois puces."},
		"ctask":      {"inverser une liste chaînée", "lire un CSV et additionner une colonne", "valider une adresse e-mail", "implémenter une recherche dichotomique", "parser du JSON", "vérifier si une chaîne est un palindrome", "relancer une requête HTTP avec un délai exponentiel"},
		"doc": {
			"Le conseil municipal a voté mardi, par 28 voix contre 11, l'extension du réseau de pistes cyclables de 12 kilomètres. La maire, Claire Dubois, a indiqué que les travaux commenceront en avril pour un coût d'environ 4,2 millions d'euros, financé en grande partie par la région. Les commerçants craignent de perdre des places de stationnement.",
			"Bonjour à tous, le lancement prévu le 14 septembre est repoussé au 28, le prestataire de paiement ayant besoin de plus de temps pour la certification. Le marketing doit suspendre la campagne d'e-mails. Julien mettra à jour la page de statut et Sophie s'occupe du nouveau plan de tests.",
			"J'ai acheté ce casque il y a trois semaines. Le son est excellent, mais l'écouteur droit grince depuis une semaine et le SAV n'a jamais répondu à mes deux e-mails. Je ne le recommande pas.",
			"Compte rendu du 12 mars. Présents : Marc, Inès, Hugo. Décision : migrer le blog vers le nouveau CMS. Inès exporte les anciens articles avant le 20 ; Hugo prépare le plan de redirections. Question ouverte : qui paie le stockage supplémentaire ?",
		},
		"subject":  {"un gardien de phare qui trouve une bouteille à la mer", "la première neige", "un robot qui apprend à peindre", "un chat libraire", "un voyageur temporel coincé en 1920", "la lune amoureuse de la mer"},
		"question": {"Quelle est la capitale du Canada ?", "Combien de temps faut-il en TGV de Paris à Marseille ?", "Pourquoi les chats aiment-ils les cartons ?", "Comment réussir une pâte à crêpes ?"},
		"techterm": {"Kubernetes", "la blockchain", "le cloud", "l'apprentissage automatique", "un pare-feu"},
	})
	fam(l, "code", "Écris une fonction {plang} pour {ctask}.", "Comment {ctask} en {plang} ? Donne-moi un exemple de code.", "J'ai besoin de code {plang} pour {ctask}, avec des commentaires.")
	fam(l, "code", "Corrige le bug dans ce code :\n{snippet}", "Pourquoi ce code ne marche pas ?\n{snippet}")
	fam(l, "code", "J'ai cette erreur :\n{error}\nQu'est-ce que je fais de travers ?", "{error}\ncomment je corrige ça ?")
	fam(l, "code", "Explique-moi ligne par ligne ce que fait ce code :\n{snippet}", "Que fait ce bout de code ?\n{snippet}")
	fam(l, "code", "Écris une requête SQL qui renvoie le deuxième salaire le plus élevé par service.", "Cette requête prend 30 secondes, optimise-la :\n{sqlq}", "Écris des tests unitaires pour cette fonction :\n{snippet}")
	fam(l, "code", "Écris un Dockerfile pour une application web en {plang}.", "Fais-moi un script bash qui compresse tous les .log de plus d'une semaine.", "Refactorise ce code pour qu'il soit plus lisible :\n{snippet}")
	fam(l, "code", "Écris un outil en ligne de commande en {plang} qui renomme des fichiers par date.", "Ajoute une gestion des erreurs à ce code :\n{snippet}")

	fam(l, "reasoning", "Petite question : si 5 machines font 5 pièces en 5 minutes, combien de temps faut-il à 100 machines pour faire 100 pièces ?", "Question rapide : une batte et une balle coûtent 1,10 € et la batte coûte 1 € de plus que la balle. Combien coûte la balle ?")
	fam(l, "reasoning", "J'écris un roman. L'héroïne a {n:20-40} ans en 1990 et a sa fille à {n:22-35} ans. Quel âge a la fille en 2025 ? Vérifie le calcul.", "Dans mon conte, un marchand vend chaque jour la moitié de ce qui lui reste plus {n:1-4} objets ; le quatrième jour il n'a plus rien. Combien en avait-il au départ ?")
	fam(l, "reasoning", "Démontre que la racine carrée de 2 est irrationnelle.", "Démontre que la somme de deux nombres impairs est paire.", "Démontre par récurrence que 1+3+5+…+(2n−1) = n².")
	fam(l, "reasoning", "Quelle est la probabilité que la somme de deux dés soit au moins {n:8-11} ?", "Si je place {n:1-50} 000 € à {n:2-7} % par an avec intérêts composés, combien aurai-je dans {n:3-20} ans ? Détaille le calcul.")
	fam(l, "reasoning", "J'ai quatre tâches A, B, C, D. C doit précéder A, B ne peut pas être la première et D suit immédiatement B. Quels ordres sont possibles ?", "Trois amis ont un chat, un chien et un perroquet. Léa n'a pas le chien, Tom n'a ni le chat ni le chien. Qui a quoi ?")
	fam(l, "reasoning", "Bonjour, j'avais le forfait à {n:10-30} € par mois et je suis passé à celui à {n:35-80} € le {n:5-25}e jour d'un cycle de 30 jours. Combien devrais-je payer ce mois-ci ? Pouvez-vous vérifier le calcul ?", "Un train part à {n:6-11} h à {n:60-90} km/h, un autre une heure plus tard à {n:91-130} km/h sur la même ligne. Quand le rattrape-t-il ?")

	fam(l, "extraction", "Résume ce texte en deux phrases :\n\n{doc}", "Fais-moi un résumé court :\n{doc}", "Quels sont les points clés de ce texte ?\n{doc}")
	fam(l, "extraction", "Traduis en {tlang} :\n{doc}", "Traduis cet e-mail en anglais :\n{doc}")
	fam(l, "extraction", "Extrais tous les noms, dates et montants du texte au format JSON :\n{doc}", "Quelles tâches et quels responsables figurent dans ce compte rendu ?\n{doc}")
	fam(l, "extraction", "Classe cet avis comme positif, négatif ou neutre :\n{doc}", "Dans quelle catégorie va ce ticket (facturation, technique, compte, autre) ? « On m'a débité deux fois l'abonnement »")
	fam(l, "extraction", "Corrige l'orthographe : Hier nous somme aller au cinéma et le film étais vraiment bien mais un peu longue.", "Réécris ce texte sur un ton plus formel :\n{doc}")
	fam(l, "extraction", "Relève dans ce log l'heure de chaque ligne ERROR :\n{log}", "Résume cet e-mail, pas besoin d'expliquer le code :\n{codedoc}")

	fam(l, "creative", "Écris un poème sur {subject}.", "Écris-moi quelques vers sur {subject}.", "Écris un poème sur un soir d'automne.")
	fam(l, "creative", "Écris une courte nouvelle sur {subject}.", "Invente une histoire pour s'endormir sur {subject}.")
	fam(l, "creative", "Propose dix noms pour un nouveau café.", "Invente un slogan pour un chargeur solaire.", "Rédige les vœux de fin d'année de {company} pour les réseaux sociaux.")
	fam(l, "creative", "Écris un article de blog qui présente {techterm} aux débutants.", "Écris une chronique drôle sur notre adoption de {techterm}.")
	fam(l, "creative", "Écris un discours pour le mariage de mon meilleur ami ; il adore la pêche.", "Écris une lettre de remerciement à mon institutrice.")
	fam(l, "creative", "Écris un dialogue entre deux vieux amis qui se retrouvent dans une gare.", "Écris les paroles d'une chanson sur un développeur qui travaille la nuit.", "Invente une fable avec un dragon et une petite fille.")

	fam(l, "chat", "Salut ! Ça va ?", "Bonjour !", "Coucou, il y a quelqu'un ?")
	fam(l, "chat", "{question}", "Dis-moi, {question}")
	fam(l, "chat", "C'est quoi {techterm} ? En deux mots.", "Qu'est-ce qu'une API, en une phrase ?", "Que veut dire l'erreur 404 ?")
	fam(l, "chat", "Merci, ça m'a beaucoup aidé !", "D'accord, compris, merci.")
	fam(l, "chat", "Tu me conseilles un roman de science-fiction ?", "Que visiter à Lyon en une journée ?", "Comment arrêter de procrastiner ?")
	fam(l, "chat", "Pour débuter, Python ou Java ?", "Docker est-il gratuit ?", "Tu peux chercher sur internet ?")

	follow(l, "extraction", "Traduis ta réponse en anglais.", "Résume ce que tu viens de dire en une phrase.")
	follow(l, "creative", "Super. Maintenant écris un petit poème là-dessus.", "Transforme ça en conte pour enfants.")
	follow(l, "code", "Tu peux en faire un script Python ?", "Implémente ça en {plang}.")
	follow(l, "reasoning", "Et si chaque article coûte 4,50 €, qu'il m'en faut 17 et qu'on ajoute 20 % de TVA, ça fait combien au total ? Montre le calcul.")
	follow(l, "chat", "D'accord. Et toi, tu t'appelles comment ?")
}
