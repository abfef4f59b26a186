package main

func registerPT() {
	const l = "pt"
	wraps[l] = wrap{
		systems: []string{"Você é um assistente prestativo.", "Você é o assistente de atendimento da {company}. Responda com educação.", "Você é um engenheiro de software experiente.", "Responda sempre em português, de forma breve.", "Você é professor de matemática; explique o raciocínio."},
		replies: []string{"Claro! Aqui está: {reply_body}", "Com certeza. {reply_body}", "Pronto. {reply_body} Mais alguma coisa?"},
	}
	addPools(l, map[string][]string{
		"tlang":      {"inglês", "espanhol", "francês", "alemão", "japonês", "chinês"},
		"company":    {"Banco Atlântico", "Viagens Sul", "MercadoVerde", "Energia Viva"},
		"reply_body": {"A resposta é 42.", "Escrevi um primeiro rascunho.", "Aqui está a versão corrigida.", "Resumi os pontos principais em três tópicos."},
		"ctask":      {"inverter uma lista ligada", "ler um CSV e somar uma coluna", "validar um endereço de e-mail", "implementar uma busca binária", "fazer o parse de um JSON", "verificar se uma string é palíndromo", "repetir uma requisição HTTP com espera exponencial"},
		"doc": {
			"A câmara municipal aprovou na terça-feira, por 21 votos a 9, a ampliação da rede de ciclovias em 12 quilômetros. A prefeita Ana Souza disse que as obras começam em abril e custarão cerca de 4,2 milhões de reais, financiados em grande parte pelo governo estadual. Comerciantes temem perder vagas de estacionamento.",
			"Olá, equipe: o lançamento previsto para 14 de setembro foi adiado para 28 porque o provedor de pagamentos precisa de mais tempo para a certificação. O marketing deve pausar a campanha de e-mail. O Rafael atualiza a página de status e a Beatriz cuida do novo plano de testes.",
			"Comprei estes fones há três semanas. O som é ótimo, mas o lado direito começou a estalar depois de uma semana e o suporte nunca respondeu aos meus dois e-mails. Não recomendo.",
			"Ata da reunião de 12 de março. Presentes: Pedro, Carla, Bruno. Decidido migrar o blog para o novo CMS. Carla exporta os artigos antigos até o dia 20; Bruno prepara o mapa de redirecionamentos. Pendente: quem paga o armazenamento extra.",
		},
		"subject":  {"um faroleiro que encontra uma mensagem numa garrafa", "a primeira neve", "um robô que aprende a pintar", "um gato dono de uma livraria", "um viajante do tempo preso em 1920", "a lua apaixonada pelo mar"},
		"question": {"Qual é a capital do Canadá?", "Quanto tempo leva de ônibus de São Paulo ao Rio?", "Por que os gatos gostam de caixas?", "Como fazer um bom pão de queijo?"},
		"techterm": {"Kubernetes", "blockchain", "a nuvem", "aprendizado de máquina", "um firewall"},
	})
	fam(l, "code", "Escreva uma função em {plang} para {ctask}.", "Como {ctask} em {plang}? Mostre um exemplo de código.", "Preciso de código {plang} para {ctask}, com comentários.")
	fam(l, "code", "Corrija o bug deste código:\n{snippet}", "Por que este código não funciona?\n{snippet}")
	fam(l, "code", "Estou recebendo este erro:\n{error}\nO que estou fazendo de errado?", "{error}\ncomo resolvo isso?")
	fam(l, "code", "Explique linha por linha o que este código faz:\n{snippet}", "O que este trecho faz?\n{snippet}")
	fam(l, "code", "Escreva uma consulta SQL que retorne o segundo maior salário de cada departamento.", "Esta consulta leva 30 segundos, otimize-a:\n{sqlq}", "Escreva testes unitários para esta função:\n{snippet}")
	fam(l, "code", "Escreva um Dockerfile para uma aplicação web em {plang}.", "Faça um script bash que compacte todos os .log com mais de uma semana.", "Refatore este código para ficar mais legível:\n{snippet}")
	fam(l, "code", "Escreva uma ferramenta de linha de comando em {plang} que renomeie arquivos por data.", "Adicione tratamento de erros a este código:\n{snippet}")

	fam(l, "reasoning", "Pergunta rápida: se 5 máquinas fazem 5 peças em 5 minutos, quanto tempo 100 máquinas levam para fazer 100 peças?", "Uma perguntinha: um taco e uma bola custam R$ 1,10 e o taco custa R$ 1,00 a mais que a bola. Quanto custa a bola?")
	fam(l, "reasoning", "Estou escrevendo um romance. A protagonista tem {n:20-40} anos em 1990 e tem a filha aos {n:22-35}. Quantos anos a filha tem em 2025? Confira as contas.", "No meu conto, um mercador vende todo dia metade do que sobrou e mais {n:1-4} peças; no quarto dia não sobra nada. Quantas peças ele tinha no início?")
	fam(l, "reasoning", "Prove que a raiz quadrada de 2 é irracional.", "Prove que a soma de dois números ímpares é par.", "Prove por indução que 1+3+5+…+(2n−1) = n².")
	fam(l, "reasoning", "Qual a probabilidade de a soma de dois dados ser pelo menos {n:8-11}?", "Se eu aplicar R$ {n:1-50}.000 a {n:2-12}% ao ano com juros compostos, quanto terei em {n:3-20} anos? Mostre o cálculo.")
	fam(l, "reasoning", "Tenho as tarefas A, B, C e D. C deve vir antes de A, B não pode ser a primeira e D vem logo depois de B. Quais ordens são possíveis?", "Três amigos têm um gato, um cachorro e um papagaio. A Ana não tem o cachorro e o Luís não tem nem o gato nem o cachorro. Quem tem o quê?")
	fam(l, "reasoning", "Olá, eu tinha o plano de R$ {n:30-60} por mês e mudei para o de R$ {n:70-150} no dia {n:5-25} de um ciclo de 30 dias. Quanto devo pagar este mês? Podem calcular?", "Um trem sai às {n:6-11}h a {n:60-90} km/h e outro uma hora depois a {n:91-130} km/h na mesma linha. Quando o segundo alcança o primeiro?")

	fam(l, "extraction", "Resuma isto em duas frases:\n\n{doc}", "Faça um resumo curto:\n{doc}", "Quais são os pontos principais deste texto?\n{doc}")
	fam(l, "extraction", "Traduza para {tlang}:\n{doc}", "Traduza este e-mail para o inglês:\n{doc}")
	fam(l, "extraction", "Extraia todos os nomes, datas e valores do texto em JSON:\n{doc}", "Quais tarefas e responsáveis aparecem na ata?\n{doc}")
	fam(l, "extraction", "Classifique esta avaliação como positiva, negativa ou neutra:\n{doc}", "Em que categoria fica este chamado (cobrança, técnico, conta, outro)? \"Cobraram a assinatura duas vezes\"")
	fam(l, "extraction", "Corrija a ortografia: Ontem nós fomos no sinema e o filme estava muito bom mais um pouco longo.", "Reescreva este texto num tom mais formal:\n{doc}")
	fam(l, "extraction", "Tire deste log o horário de cada linha com ERROR:\n{log}", "Resuma este e-mail; não precisa explicar o código:\n{codedoc}")

	fam(l, "creative", "Escreva um poema sobre {subject}.", "Escreva alguns versos sobre {subject}.", "Escreva um poema sobre uma tarde de outono.")
	fam(l, "creative", "Escreva um conto curto sobre {subject}.", "Invente uma história de ninar sobre {subject}.")
	fam(l, "creative", "Sugira dez nomes para uma cafeteria nova.", "Crie um slogan para um carregador solar.", "Escreva a mensagem de fim de ano da {company} para as redes sociais.")
	fam(l, "creative", "Escreva um post de blog apresentando {techterm} para iniciantes.", "Escreva uma crônica divertida sobre como adotamos {techterm}.")
	fam(l, "creative", "Escreva um discurso para o casamento do meu melhor amigo; ele adora pescar.", "Escreva uma carta de agradecimento para a minha professora.")
	fam(l, "creative", "Escreva um diálogo entre dois velhos amigos que se reencontram numa estação.", "Escreva a letra de uma música sobre uma programadora que trabalha de madrugada.", "Invente uma fábula com um dragão e uma menina.")

	fam(l, "chat", "Oi! Tudo bem?", "Bom dia!", "Olá, tem alguém aí?")
	fam(l, "chat", "{question}", "Me diz uma coisa: {question}")
	fam(l, "chat", "O que é {techterm}? Bem resumido.", "O que é uma API, numa frase?", "O que significa erro 404?")
	fam(l, "chat", "Obrigado, ajudou muito!", "Beleza, entendi, valeu.")
	fam(l, "chat", "Pode me indicar um livro de ficção científica?", "O que ver em Lisboa em um dia?", "Como paro de procrastinar?")
	fam(l, "chat", "Python ou Java para quem está começando?", "O Docker é gratuito?", "Você consegue pesquisar na internet?")

	follow(l, "extraction", "Traduza sua resposta para o inglês.", "Resuma o que você acabou de dizer numa frase.")
	follow(l, "creative", "Ótimo. Agora escreva um poeminha sobre isso.", "Transforme isso numa história infantil.")
	follow(l, "code", "Pode transformar isso num script Python?", "Implemente isso em {plang}.")
	follow(l, "reasoning", "E se cada um custa R$ 4,50, preciso de 17 e ainda tem 10% de imposto, quanto dá no total? Mostre a conta.")
	follow(l, "chat", "Entendi. E qual é o seu nome?")
}
