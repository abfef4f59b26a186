package meaning

import "strings"

// The word lists below are the whole of the normalizer's language knowledge.
// Two rules keep them safe: a word that can carry meaning (a number, a
// negation, a comparison, a unit) is never a filler, and a filler is removed
// only where it cannot be content (see Normalize). TestListsDisjoint checks
// the first rule.

// set builds a lookup set from space-separated words.
func set(lists ...string) map[string]bool {
	m := map[string]bool{}
	for _, l := range lists {
		for _, w := range strings.Fields(l) {
			m[w] = true
		}
	}
	return m
}

// common are lowercase function words (question words, pronouns, articles,
// auxiliaries, prepositions, a few imperative verbs, greetings). Only these
// are folded to lowercase when capitalized at the start of a sentence: a
// capitalized word that is not in this list may be a name ("Apple", "Turkey",
// "May") and is kept as typed.
var common = set(
	// English
	`what what's whats how how's why where where's when who who's whom whose which is are was were am be been do does did
	 can could would will should shall may might must i i'm i've i'll you your yours we our they their them he she it its
	 his her this that that's these those there there's here here's a an the and or but so if then of to in on at for from
	 with by about into as tell explain give show list write translate summarize summarise describe find help make create
	 please hi hello hey thanks thank let let's any some my me yes no not never without`,
	// German
	`was wie warum wo wann wer wen wem wessen welche welcher welches ist sind war waren bin bist sein kann kannst können
	 könnten könntest würde würden soll sollte muss darf ich du sie er es wir ihr ihre ihr ihren unser unsere der die das
	 den dem des ein eine einen einem einer und oder aber wenn dann von zu in im an am auf für mit bei über nach aus gibt
	 gib zeig erkläre erklären nenne schreib schreibe übersetze bitte hallo hi danke mein meine kein keine nicht nie ohne`,
	// French
	`que quoi quel quelle quels quelles comment pourquoi où quand qui est sont était suis êtes peux pouvez puis je tu il
	 elle nous vous ils elles votre vos notre nos mon ma mes le la les un une des du de et ou mais si alors en dans sur
	 pour avec par à au aux donne donnez montre montrez explique expliquez dis dites écris écrivez traduis traduisez
	 bonjour salut merci c'est qu'est-ce ne pas jamais sans aucun aucune`,
	// Spanish
	`qué que cómo como por porque dónde donde cuándo cuando quién quien cuál cual cuáles es son era soy eres está están
	 puedo puedes puede pueden podría podrías yo tú tu usted él ella nosotros ustedes ellos su sus mi mis el la los las un
	 una unos unas y o pero si entonces de del en con para al dame dime explica explícame muestra escribe traduce hola
	 gracias no nunca sin ningún ninguna`,
	// Italian
	`che cosa come perché dove quando chi quale quali è sono era sei puoi può potete potresti io tu lui lei noi voi loro
	 il lo la i gli le un una uno e o ma se allora di del della in con per su da al mi dimmi spiega mostra scrivi traduci
	 ciao grazie qual non mai senza nessun nessuna`,
	// Portuguese
	`que quê como por porque onde quando quem qual quais é são era sou está estão posso pode podem poderia eu tu você ele
	 ela nós vocês eles seu sua seus suas meu minha o a os as um uma e ou mas se então de do da dos das em no na com para
	 ao me diga explique mostre escreva traduza olá oi obrigado obrigada não nunca sem nenhum nenhuma`,
	// Russian (Cyrillic has case too)
	`что как почему где когда кто какой какая какие какое это есть можно можете могу мне я ты вы он она мы они ваш ваша
	 ваши наш мой моя и или но если то в на с для по из о объясни объясните расскажи скажи скажите покажи напиши переведи
	 привет здравствуйте спасибо пожалуйста не нет никогда без`,
	// Number words: not names, so folding them at a sentence start is safe.
	`one two three four five six seven eight nine ten eleven twelve twenty hundred thousand million first second third
	 eins zwei drei vier fünf sechs sieben acht neun zehn hundert tausend erste zweite dritte
	 deux trois quatre cinq six sept huit neuf dix cent mille premier première deuxième
	 uno dos tres cuatro cinco seis siete ocho nueve diez cien mil primero primera segundo
	 due tre quattro cinque sei sette otto nove dieci cento mille primo prima secondo
	 um dois três quatro cinco seis sete oito nove dez cem mil primeiro primeira segundo
	 один два три четыре пять шесть семь восемь девять десять сто тысяча первый второй`,
)

// elisions are French and Italian elided articles and pronouns; a sentence
// starting "L'heure" folds only the elision ("l'heure"), never the word.
var elisions = []string{"l'", "d'", "j'", "qu'", "n'", "c'", "s'", "m'", "t'", "dell'", "all'", "nell'", "sull'", "un'"}

// contractions are English contractions with an apostrophe (unambiguous in
// any language) and their expansions. The negative ones keep "not".
var contractions = map[string]string{
	"can't": "can not", "cannot": "can not", "won't": "will not", "shan't": "shall not",
	"let's": "let us", "i'm": "i am", "i've": "i have", "i'll": "i will",
	"what's": "what is", "where's": "where is", "who's": "who is", "how's": "how is", "when's": "when is", "why's": "why is",
	"that's": "that is", "there's": "there is", "here's": "here is", "it's": "it is", "he's": "he is", "she's": "she is",
	"you're": "you are", "we're": "we are", "they're": "they are", "you've": "you have", "we've": "we have",
	"they've": "they have", "you'll": "you will", "we'll": "we will", "they'll": "they will", "it'll": "it will",
}

// bareContractions are the same without the apostrophe; applied only to text
// detected as English ("whats" is no word elsewhere, "im" is German).
var bareContractions = map[string]string{
	"dont": "do not", "doesnt": "does not", "didnt": "did not", "isnt": "is not", "arent": "are not",
	"wasnt": "was not", "werent": "were not", "havent": "have not", "hasnt": "has not", "hadnt": "had not",
	"shouldnt": "should not", "wouldnt": "would not", "couldnt": "could not", "cant": "can not",
	"whats": "what is", "thats": "that is", "youre": "you are", "theyre": "they are",
}

// greetings open a request and are removed only when a comma, "!" or "."
// follows them ("Hi, what is…"), never before content ("hello in French").
var greetings = set(`hi hello hey hallo bonjour salut hola ciao olá oi привет здравствуйте 你好 您好 こんにちは 안녕하세요`,
	`dear`)

// thanks close a request and are removed only after a comma or sentence end.
var thanks = set(`thanks thx danke merci gracias grazie obrigado obrigada спасибо 谢谢 ありがとう 감사합니다`)

// thanksPhrases are two-word closers, as lowercase "a b".
var thanksPhrases = set(`thank_you thanks_a_lot danke_schön danke_sehr merci_beaucoup muchas_gracias grazie_mille muito_obrigado muito_obrigada большое_спасибо`)

// politeness words are removed at the start or end of the request, or right
// after "can/could/would/will you".
var politeness = set(`please kindly bitte пожалуйста`)

// politePhrases are multi-word "please", as lowercase "a b c".
var politePhrases = set(`por_favor s'il_vous_plaît s'il_te_plaît per_favore`)

// hesitations are fillers removed anywhere, per language: "um" is German for
// "at", so each list applies only to text detected as its language.
var hesitations = map[string]map[string]bool{
	"en": set(`um uh uhm umm erm hmm`),
	"de": set(`äh ähm öhm`),
	"fr": set(`euh`),
	"es": set(`eh`),
	"it": set(`ehm`),
	"pt": set(`hum`),
}

// cjkPrefixes are request openers in Chinese and Japanese text, removed at
// the start only ("请问" is "may I ask"; a bare "请" is not: 请假 is "leave").
var cjkPrefixes = []string{"请问", "麻烦问一下", "すみません、", "すみません"}

// modals precede "you" in "can you please…".
var modals = set(`can could would will`)

// stopwords guess the language of Latin-script text (see lang).
var stopwords = map[string]map[string]bool{
	"en": set(`the is are what how why where when who which you your do does can could my i it of to and in for with on this that please not don't what's is there`),
	"de": set(`der die das ist sind wie was warum wo wann wer ich du sie ihr ihre es und nicht kein keine ein eine mit für zu auf bitte den dem im gibt können kann`),
	"fr": set(`le les est sont quel quelle quels comment pourquoi où quand je vous votre vos pas ne et des une pour du qui c'est qu'est-ce est-ce s'il puis-je`),
	"es": set(`el los las es son qué cómo cuál cuáles por dónde cuándo yo tu usted su sus y del para una unos puedo puedes está hay`),
	"it": set(`il lo gli è sono che come qual quale perché dove quando io tu lei voi vostro vostra e di del della per non una mi può posso`),
	"pt": set(`o os é são que como qual quais porque onde quando eu você seu sua e do da dos das para não uma um posso pode está há`),
}

// Meaning-bearing word lists, all languages together: a word here is never
// removed and must be equal on both sides for SameMeaningTokens.
var (
	negations = set(
		`not no never none nobody nothing neither nor without cannot nowhere`,
		`nicht kein keine keinen keinem keiner keines nie niemals ohne nichts niemand weder`,
		`ne n' pas jamais sans aucun aucune rien ni non`,
		`no nunca sin ningún ninguno ninguna nada nadie jamás tampoco`,
		`non mai senza nessun nessuno nessuna niente nulla né`,
		`não nunca sem nenhum nenhuma nada ninguém nem jamais`,
		`не нет ни никогда без ничего никто нельзя`,
	)
	comparisons = set(
		`more less fewer most least better worse best worst greater larger smaller bigger higher lower cheaper faster
		 slower older younger newer than over under above below exceed exceeds exceeding maximum minimum max min before
		 after earlier later prior since until till first last previous next earliest latest increase decrease
		 longer shorter heavier lighter warmer colder hotter`,
		`mehr weniger besser schlechter größer kleiner höher niedriger billiger teurer schneller langsamer als über unter
		 vor nach bevor nachdem seit bis mindestens höchstens früher später erste ersten letzte letzten nächste nächsten
		 vorherige meisten wenigsten älter jünger länger kürzer`,
		`plus moins meilleur meilleure pire mieux supérieur supérieure inférieur inférieure avant après depuis jusqu'à
		 premier première dernier dernière prochain prochaine maximum minimum`,
		`más menos mejor peor mayor menor antes después desde hasta primero primera último última próximo próxima máximo
		 mínimo`,
		`più meno meglio peggio migliore peggiore maggiore minore prima dopo fino primo ultimo ultima prossimo prossima
		 massimo minimo`,
		`mais menos melhor pior maior menor antes depois desde até primeiro primeira último última próximo próxima máximo
		 mínimo`,
		`больше меньше лучше хуже выше ниже дешевле дороже до после раньше позже первый последний чем`,
	)
	units = set(
		`km m cm mm kg g mg lb lbs oz mi mile miles meter meters metre metres kilometer kilometers kilometre kilometres
		 foot feet ft inch inches °c °f celsius fahrenheit kelvin l ml liter liters litre litres gallon gallons gb mb kb
		 tb ms sec secs second seconds minute minutes min mins hour hours h hr hrs day days week weeks month months year
		 years usd eur gbp jpy chf $ € £ ¥ % percent dollar dollars euro euros yen pound pounds kw kwh w v mph km/h`,
		`stunde stunden tag tage tagen woche wochen monat monate monaten jahr jahre jahren minute minuten sekunde sekunden
		 meter kilometer kilogramm gramm liter prozent`,
		`heure heures jour jours semaine semaines mois an ans année années seconde secondes mètre mètres kilomètre
		 kilomètres litre litres pour-cent`,
		`hora horas día días semana semanas mes meses año años segundo segundos metro metros kilómetro kilómetros litro
		 litros kilo kilos`,
		`ora ore giorno giorni settimana settimane mese mesi anno anni metro metri chilometro chilometri litro litri`,
		`hora horas dia dias semana semanas mês meses ano anos metro metros quilômetro quilômetros litro litros`,
		`час часа часов день дня дней неделя недели недель месяц месяца месяцев год года лет км кг г метр метров евро доллар доллара долларов рубль рубля рублей гб мб`,
	)
	numberWords = set(
		`zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen
		 seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million
		 billion dozen half quarter double twice triple once thrice third`,
		`null eins ein zwei drei vier fünf sechs sieben acht neun zehn elf zwölf zwanzig dreißig hundert tausend
		 million milliarde halb hälfte doppelt dritte`,
		`zéro un deux trois quatre cinq six sept huit neuf dix onze douze vingt trente cent mille million milliard demi
		 moitié double deuxième troisième`,
		`cero uno dos tres cuatro cinco seis siete ocho nueve diez once doce veinte treinta cien ciento mil millón medio
		 mitad doble segundo tercero`,
		`zero due tre quattro cinque sei sette otto nove dieci undici dodici venti trenta cento mille milione mezzo metà
		 doppio secondo terzo`,
		`zero dois duas três quatro cinco seis sete oito nove dez onze doze vinte trinta cem cento mil milhão meio metade
		 dobro segundo terceiro`,
		`ноль один одна два две три четыре пять шесть семь восемь девять десять сто тысяча миллион половина`,
	)
)
