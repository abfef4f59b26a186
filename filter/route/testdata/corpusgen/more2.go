package main

// A third batch per language: code to fix or debug (provided code is not
// extraction when the work is code), stories that need arithmetic, and
// original texts on technical topics.
func registerMore2() {
	type batch struct{ fix, story, techText []string }
	batches := map[string]batch{
		"zh": {
			[]string{"这个函数偶尔返回错误的结果，帮我调试一下：\n{snippet}", "代码跑不通，能帮我改对吗？\n{snippet}", "这段代码在生产环境报错 {error}，请给出修复后的代码：\n{snippet}"},
			[]string{"我的小说里，一支商队每天走 {n:20-40} 公里，要走 {n:300-900} 公里，每走三天休息一天，一共要多少天？", "故事设定：魔法师每年长一岁，但每过 {n:3-9} 年就年轻两岁。他 100 年后看起来多少岁？请帮我算。"},
			[]string{"写一篇关于{techterm}的演讲稿，面向公司全员。", "为我们的技术博客写一篇关于微服务的原创文章开头。"},
		},
		"ja": {
			[]string{"この関数がたまに間違った結果を返します。デバッグしてください：\n{snippet}", "コードが動きません。直してもらえますか？\n{snippet}", "本番で {error} が出ます。修正したコードをください：\n{snippet}"},
			[]string{"小説の設定で、隊商は一日{n:20-40}km進み、{n:300-900}km先を目指します。三日ごとに一日休むと、何日かかりますか？", "物語の魔法使いは毎年一歳年をとりますが、{n:3-9}年ごとに二歳若返ります。100年後は何歳に見えますか？計算して。"},
			[]string{"{techterm}について全社向けのスピーチ原稿を書いて。", "技術ブログ用に、マイクロサービスについてのオリジナル記事の冒頭を書いてください。"},
		},
		"ko": {
			[]string{"이 함수가 가끔 틀린 결과를 내요. 디버깅해 주세요:\n{snippet}", "코드가 안 돌아가요. 고쳐 줄 수 있어요?\n{snippet}", "운영 환경에서 {error} 에러가 나요. 수정된 코드를 주세요:\n{snippet}"},
			[]string{"소설 설정인데, 대상(隊商)이 하루에 {n:20-40}km씩 {n:300-900}km를 가고 사흘마다 하루 쉬어요. 모두 며칠 걸려요?", "이야기 속 마법사는 해마다 한 살씩 먹지만 {n:3-9}년마다 두 살 젊어져요. 100년 뒤엔 몇 살로 보일까요? 계산해 주세요."},
			[]string{"{techterm}에 대한 전 직원 대상 발표 원고를 써 주세요.", "기술 블로그에 올릴 마이크로서비스에 관한 독창적인 글의 도입부를 써 줘."},
		},
		"ru": {
			[]string{"Эта функция иногда возвращает неверный результат, помоги отладить:\n{snippet}", "Код не работает, поправишь?\n{snippet}", "В продакшене падает с {error}. Дай исправленный код:\n{snippet}"},
			[]string{"В моём романе караван проходит {n:20-40} км в день, ему нужно пройти {n:300-900} км, и каждый четвёртый день он отдыхает. Сколько дней займёт путь?", "По сюжету волшебник стареет на год каждый год, но каждые {n:3-9} лет молодеет на два. На сколько он будет выглядеть через 100 лет? Посчитай."},
			[]string{"Напиши речь для всей компании о том, что такое {techterm}.", "Напиши начало авторской статьи для нашего техблога о микросервисах."},
		},
		"es": {
			[]string{"Esta función a veces devuelve un resultado incorrecto, ayúdame a depurarla:\n{snippet}", "El código no funciona, ¿me lo arreglas?\n{snippet}", "En producción falla con {error}. Dame el código corregido:\n{snippet}"},
			[]string{"En mi novela, una caravana recorre {n:20-40} km al día y debe cubrir {n:300-900} km, descansando uno de cada cuatro días. ¿Cuántos días tarda?", "En mi historia, un mago envejece un año cada año pero rejuvenece dos cada {n:3-9} años. ¿Qué edad aparentará dentro de 100 años? Haz la cuenta."},
			[]string{"Escribe un discurso para toda la empresa explicando qué es {techterm}.", "Escribe el comienzo de un artículo original para nuestro blog técnico sobre microservicios."},
		},
		"fr": {
			[]string{"Cette fonction renvoie parfois un mauvais résultat, aide-moi à la déboguer :\n{snippet}", "Le code ne marche pas, tu peux le corriger ?\n{snippet}", "En production ça plante avec {error}. Donne-moi le code corrigé :\n{snippet}"},
			[]string{"Dans mon roman, une caravane parcourt {n:20-40} km par jour et doit faire {n:300-900} km, avec un jour de repos sur quatre. Combien de jours faut-il ?", "Dans mon histoire, un magicien vieillit d'un an chaque année mais rajeunit de deux ans tous les {n:3-9} ans. Quel âge paraîtra-t-il dans 100 ans ? Fais le calcul."},
			[]string{"Écris un discours pour toute l'entreprise expliquant ce qu'est {techterm}.", "Écris le début d'un article original pour notre blog technique sur les microservices."},
		},
		"de": {
			[]string{"Diese Funktion liefert manchmal ein falsches Ergebnis, hilf mir beim Debuggen:\n{snippet}", "Der Code läuft nicht, kannst du ihn reparieren?\n{snippet}", "In Produktion stürzt es mit {error} ab. Gib mir den korrigierten Code:\n{snippet}"},
			[]string{"In meinem Roman legt eine Karawane {n:20-40} km am Tag zurück und muss {n:300-900} km schaffen, mit einem Ruhetag nach je drei Tagen. Wie viele Tage dauert die Reise?", "In meiner Geschichte altert ein Zauberer jedes Jahr um ein Jahr, wird aber alle {n:3-9} Jahre um zwei Jahre jünger. Wie alt wirkt er in 100 Jahren? Rechne es aus."},
			[]string{"Schreib eine Rede für die ganze Firma, die erklärt, was {techterm} ist.", "Schreib den Anfang eines eigenen Artikels für unseren Tech-Blog über Microservices."},
		},
		"pt": {
			[]string{"Esta função às vezes devolve um resultado errado, me ajuda a depurar:\n{snippet}", "O código não funciona, consegue corrigir?\n{snippet}", "Em produção dá {error}. Me passa o código corrigido:\n{snippet}"},
			[]string{"No meu romance, uma caravana anda {n:20-40} km por dia e precisa percorrer {n:300-900} km, descansando um dia a cada quatro. Quantos dias leva?", "Na minha história, um mago envelhece um ano por ano, mas rejuvenesce dois a cada {n:3-9} anos. Que idade vai aparentar daqui a 100 anos? Faça a conta."},
			[]string{"Escreva um discurso para a empresa toda explicando o que é {techterm}.", "Escreva o começo de um artigo original para o nosso blog técnico sobre microsserviços."},
		},
	}
	// In a fixed order: a family's index decides its split.
	for _, l := range []string{"zh", "ja", "ko", "ru", "es", "fr", "de", "pt"} {
		b := batches[l]
		fam(l, "code", b.fix...)
		fam(l, "reasoning", b.story...)
		fam(l, "creative", b.techText...)
	}
}
