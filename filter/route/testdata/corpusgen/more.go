package main

// A second batch for every language but English: other phrasings and
// other kinds of task per class, and borderline cases.
func registerMore() {
	// ---- Chinese ----
	l := "zh"
	fam(l, "code", "我的 {plang} 程序内存占用越来越高，下面是主循环：\n{snippet}\n怎么找到并修复内存泄漏？", "这个接口在高并发下会出错，帮我改成线程安全的：\n{snippet}")
	fam(l, "code", "{cppconcept_zh}到底是什么？请用代码举例说明。", "能用一段代码演示一下{cppconcept_zh}吗？")
	fam(l, "code", "帮我写一个正则表达式，匹配中国大陆的手机号。", "写一个 Python 脚本，每天凌晨备份 MySQL 数据库。", "用 Go 写一个简单的 HTTP 服务，返回当前时间的 JSON。")
	fam(l, "code", "Git 提示冲突了，我该用哪些命令解决？", "Kubernetes 的 Pod 一直 CrashLoopBackOff，配置如下，哪里写错了？\n{yaml}")
	fam(l, "reasoning", "计算 {mathexpr}，写出详细步骤。", "求 {mathexpr}。")
	fam(l, "reasoning", "一件衣服先打八折再减 {n:10-50} 元，和先减 {n:10-50} 元再打八折，哪种更便宜？原价 {n:200-600} 元。", "信用卡年利率 {n:15-24}%，理财收益 {n:3-6}%，我应该先还款还是先理财？请用数字说明。")
	fam(l, "reasoning", "甲比乙高，丙比乙矮但比丁高，戊比甲高。谁第二矮？", "如果所有的 A 都是 B，没有 B 是 C，那么有没有 A 是 C？请说明理由。")
	fam(l, "reasoning", "我们的服务器每台每秒能处理 {n:200-800} 个请求，高峰是每秒 {n:3000-9000} 个，要留 30% 余量，需要几台？", "数据库每周增长 {n:2-9} GB，还剩 {n:100-500} GB 空间，多少周后会满？")
	fam(l, "extraction", "把下面的财报要点提取成表格（指标、数值）：\n本季度营收 4.82 亿元，同比增长 12%；营业成本 3.15 亿元，增长 7%；新增企业客户 1240 家，流失率从 2.1% 降到 1.7%。", "这段话里提到了哪些百分比？分别指什么？\n本季度营收同比增长 12%，成本增长 7%，流失率从 2.1% 降到 1.7%。")
	fam(l, "extraction", "把下面的内容改写成三个要点，用于汇报：\n{doc}", "帮我把这段客服对话整理成问题和解决方案两部分：\n用户：我的订单三天了还没发货。\n客服：抱歉，仓库缺货，预计明天发出，给您补偿 10 元优惠券。\n用户：好的，谢谢。")
	fam(l, "extraction", "判断下面每句话是投诉、表扬还是咨询：\n1. 新版本太好用了！\n2. 为什么今天打不开？\n3. 会员包含离线下载吗？", "把这些邮件按紧急和不紧急分类：服务器宕机；周五午餐菜单；合同今天必须签字。")
	fam(l, "extraction", "把这个 CSV 转成 JSON：\nname,age,city\n小王,31,成都\n小李,27,西安", "把下面的日期统一成 YYYY-MM-DD 格式：2024年3月1日，23/12/2023，2025.7.4")
	fam(l, "creative", "写一篇产品发布的朋友圈文案，产品是{product_zh}。", "为{product_zh}写一段电商详情页的介绍。")
	fam(l, "creative", "以“服务器永远不睡觉”为题写一首诗。", "写一首献给电子表格的赞美诗，要幽默一点。")
	fam(l, "creative", "帮我构思一部发生在{place_zh}的悬疑小说的情节。", "写一段反派的内心独白，他认为自己是英雄。")
	fam(l, "creative", "给同事写一段生日祝福，她喜欢跑马拉松。", "写一段毕业典礼上的学生代表发言稿开头。")
	fam(l, "chat", "给我讲一个关于{trivia_zh}的冷知识。", "{trivia_zh}有什么有趣的地方？")
	fam(l, "chat", "成年人每天需要睡几个小时？", "一天喝多少水比较合适？", "牙刷多久换一次？")
	fam(l, "chat", "周末下雨在家可以做什么？", "推荐一部适合全家看的电影。", "五千块以内买什么笔记本电脑写代码比较好？")
	fam(l, "chat", "你是真人吗？", "你能做什么？", "我可以问你任何问题吗？")
	addPools(l, map[string][]string{
		"cppconcept_zh": {"Python 的 GIL", "JavaScript 的闭包", "Go 的接口", "Rust 的生命周期", "SQL 的窗口函数"},
		"product_zh":    {"一款太阳能充电宝", "一款学生笔记软件", "降噪耳机", "可折叠电动车"},
		"place_zh":      {"雾气弥漫的港口小镇", "火星殖民地", "上世纪二十年代的上海", "一列夜行火车"},
		"trivia_zh":     {"水母", "长城", "蜂蜜", "企鹅", "火山", "黑洞"},
	})

	// ---- Japanese ----
	l = "ja"
	fam(l, "code", "{plang}のプログラムがだんだんメモリを食うようになります。メインループはこれです：\n{snippet}\nリークの原因と直し方を教えて。", "このコードをスレッドセーフにしてください：\n{snippet}")
	fam(l, "code", "PythonのGILって結局何ですか？コード例で説明して。", "JavaScriptのクロージャをコードで説明してください。", "Goのインターフェースのnil判定がややこしいので、例を見せて。")
	fam(l, "code", "日本の郵便番号にマッチする正規表現を書いて。", "毎晩MySQLをバックアップするPythonスクリプトを書いてください。", "現在時刻をJSONで返す簡単なHTTPサーバーをGoで書いて。")
	fam(l, "code", "gitでコンフリクトが出ました。どのコマンドで解決すればいいですか？", "PodがCrashLoopBackOffになります。設定はこれです。どこがおかしい？\n{yaml}")
	fam(l, "reasoning", "{mathexpr}を計算してください。途中式もお願いします。", "{mathexpr}を求めて。")
	fam(l, "reasoning", "{n:200-900}円の商品を2割引きしてから{n:10-90}円引くのと、先に引いてから2割引きするのはどちらが安い？", "リボ払いの金利{n:12-18}%と投資の期待リターン{n:3-7}%、どちらを優先すべき？数字で考えて。")
	fam(l, "reasoning", "AはBより背が高く、CはBより低いがDより高い。EはAより高い。二番目に低いのは誰？", "すべてのAはBで、どのBもCではないなら、Cであるようなaは存在しますか？理由も。")
	fam(l, "reasoning", "サーバー1台で毎秒{n:200-800}リクエスト処理でき、ピークは毎秒{n:3000-9000}、30%の余裕を持たせたい。何台必要？", "データベースが毎週{n:2-9}GB増え、空きが{n:100-500}GBです。何週間でいっぱいになりますか？")
	fam(l, "extraction", "次の決算の要点を表にまとめて（指標・数値）：\n売上高48.2億円（前年比12%増）、営業費用31.5億円（7%増）、新規法人顧客1,240社、解約率2.1%→1.7%。", "この文章に出てくる割合をすべて挙げて、何を指すか説明して：\n売上は12%増、費用は7%増、解約率は2.1%から1.7%に低下。")
	fam(l, "extraction", "次の内容を報告用に三つの箇条書きにしてください：\n{doc}", "このサポートのやり取りを「問題」と「対応」に整理して：\n客：注文から三日経っても発送されません。\n担当：申し訳ありません、在庫切れで明日発送予定です。500円分のクーポンをお付けします。")
	fam(l, "extraction", "次の文を苦情・称賛・質問に分類して：\n1. 新しいアップデート最高！\n2. なぜ今日は開けないの？\n3. プレミアムにオフライン機能はありますか？", "このCSVをJSONに変換して：\nname,age,city\n田中,31,札幌\n佐藤,27,福岡")
	fam(l, "extraction", "次の日付をYYYY-MM-DD形式にそろえて：2024年3月1日、23/12/2023、令和6年7月4日", "次のメールを一文で要約してください：\n{doc}")
	fam(l, "creative", "{product_ja}の発売を告知するSNS投稿を書いて。", "{product_ja}の商品紹介文を書いてください。")
	fam(l, "creative", "「眠らないサーバー」という題で詩を書いて。", "表計算ソフトをたたえるユーモラスな詩を書いて。")
	fam(l, "creative", "{place_ja}を舞台にしたミステリー小説のあらすじを考えて。", "自分が正義だと信じている悪役の独白を書いて。")
	fam(l, "creative", "マラソン好きの同僚への誕生日メッセージを書いて。", "卒業式の答辞の書き出しを考えてください。")
	fam(l, "chat", "{trivia_ja}について面白い豆知識を教えて。", "{trivia_ja}の意外な事実って何？")
	fam(l, "chat", "大人は一日何時間寝るべき？", "一日にどれくらい水を飲めばいい？", "歯ブラシはどのくらいで替えるべき？")
	fam(l, "chat", "雨の日曜日、家で何をしよう？", "家族で見られる映画を教えて。", "10万円以下でプログラミング向けのノートPCは？")
	fam(l, "chat", "あなたは人間ですか？", "何ができますか？", "どんな質問でもしていいの？")
	addPools(l, map[string][]string{
		"product_ja": {"ソーラー充電器", "学生向けノートアプリ", "ノイズキャンセリングイヤホン", "折りたたみ電動自転車"},
		"place_ja":   {"霧の港町", "火星の植民地", "大正時代の東京", "夜行列車"},
		"trivia_ja":  {"クラゲ", "富士山", "はちみつ", "ペンギン", "火山", "ブラックホール"},
	})

	// ---- Korean ----
	l = "ko"
	fam(l, "code", "{plang} 프로그램이 점점 메모리를 많이 써요. 메인 루프는 이거예요:\n{snippet}\n누수 원인과 해결 방법을 알려 주세요.", "이 코드를 스레드 안전하게 바꿔 주세요:\n{snippet}")
	fam(l, "code", "파이썬 GIL이 정확히 뭐예요? 코드 예제로 설명해 주세요.", "자바스크립트 클로저를 코드로 보여 줘.", "Go 인터페이스의 nil 비교가 헷갈려요. 예제 좀 보여 주세요.")
	fam(l, "code", "한국 휴대폰 번호에 맞는 정규식을 만들어 줘.", "매일 밤 MySQL을 백업하는 파이썬 스크립트를 작성해 주세요.", "현재 시간을 JSON으로 반환하는 간단한 Go HTTP 서버를 만들어 줘.")
	fam(l, "code", "git에서 충돌이 났어요. 어떤 명령어로 해결하나요?", "Pod가 계속 CrashLoopBackOff예요. 설정은 이렇습니다. 뭐가 틀렸나요?\n{yaml}")
	fam(l, "reasoning", "{mathexpr}를 계산해 주세요. 풀이 과정도 보여 주세요.", "{mathexpr}를 구하시오.")
	fam(l, "reasoning", "{n:20-90}천 원짜리 물건을 20% 할인한 뒤 {n:1-9}천 원을 빼는 것과, 먼저 빼고 20% 할인하는 것 중 어느 쪽이 싸요?", "카드 이자율 {n:12-20}%와 투자 기대수익률 {n:3-7}% 중 무엇을 먼저 해야 할까요? 숫자로 따져 주세요.")
	fam(l, "reasoning", "A는 B보다 키가 크고, C는 B보다 작지만 D보다 커요. E는 A보다 커요. 두 번째로 작은 사람은?", "모든 A가 B이고 어떤 B도 C가 아니라면, C인 A가 있을 수 있나요? 이유도요.")
	fam(l, "reasoning", "서버 한 대가 초당 {n:200-800}개 요청을 처리하고 피크는 초당 {n:3000-9000}개예요. 30% 여유를 두려면 몇 대가 필요해요?", "데이터베이스가 매주 {n:2-9}GB씩 늘고 남은 공간이 {n:100-500}GB예요. 몇 주 뒤에 가득 차나요?")
	fam(l, "extraction", "다음 실적 요약을 표로 정리해 주세요 (지표, 수치):\n매출 482억 원(전년 대비 12% 증가), 영업비용 315억 원(7% 증가), 신규 기업 고객 1,240곳, 이탈률 2.1%→1.7%.", "이 글에 나온 퍼센트를 모두 찾아서 무엇을 뜻하는지 적어 줘:\n매출 12% 증가, 비용 7% 증가, 이탈률 2.1%에서 1.7%로 감소.")
	fam(l, "extraction", "다음 내용을 보고용 세 가지 요점으로 정리해 주세요:\n{doc}", "이 상담 내용을 '문제'와 '조치'로 나눠 정리해 줘:\n고객: 주문한 지 사흘인데 아직 배송이 안 됐어요.\n상담원: 죄송합니다, 재고가 없어 내일 발송 예정이고 3천 원 쿠폰을 드릴게요.")
	fam(l, "extraction", "다음 문장을 불만, 칭찬, 문의로 분류해 주세요:\n1. 새 업데이트 정말 좋아요!\n2. 오늘 왜 안 열려요?\n3. 프리미엄에 오프라인 기능 있나요?", "이 CSV를 JSON으로 바꿔 줘:\nname,age,city\n민수,31,부산\n지은,27,대구")
	fam(l, "extraction", "다음 날짜를 YYYY-MM-DD 형식으로 통일해 주세요: 2024년 3월 1일, 23/12/2023, 2025.7.4", "다음 이메일을 한 문장으로 요약해 주세요:\n{doc}")
	fam(l, "creative", "{product_ko} 출시를 알리는 SNS 글을 써 주세요.", "{product_ko} 상품 소개 문구를 써 줘.")
	fam(l, "creative", "'잠들지 않는 서버'라는 제목으로 시를 써 줘.", "스프레드시트를 찬양하는 유머러스한 시를 써 주세요.")
	fam(l, "creative", "{place_ko}을 배경으로 한 추리 소설 줄거리를 구상해 줘.", "자신이 영웅이라고 믿는 악당의 독백을 써 주세요.")
	fam(l, "creative", "마라톤을 좋아하는 동료에게 보낼 생일 축하 메시지를 써 줘.", "졸업식 답사의 첫 부분을 써 주세요.")
	fam(l, "chat", "{trivia_ko}에 대한 재미있는 사실 알려 줘.", "{trivia_ko}의 의외의 사실이 뭐예요?")
	fam(l, "chat", "성인은 하루에 몇 시간 자야 해요?", "하루에 물을 얼마나 마셔야 해요?", "칫솔은 얼마나 자주 바꿔야 해요?")
	fam(l, "chat", "비 오는 일요일에 집에서 뭐 하지?", "가족끼리 볼 만한 영화 추천해 줘.", "100만 원 이하로 코딩용 노트북 뭐가 좋아요?")
	fam(l, "chat", "당신은 사람이에요?", "뭘 할 수 있어요?", "아무거나 물어봐도 돼요?")
	addPools(l, map[string][]string{
		"product_ko": {"태양광 보조배터리", "학생용 노트 앱", "노이즈 캔슬링 이어폰", "접이식 전기자전거"},
		"place_ko":   {"안개 낀 항구 마을", "화성 식민지", "1920년대 경성", "야간열차"},
		"trivia_ko":  {"해파리", "한라산", "꿀", "펭귄", "화산", "블랙홀"},
	})

	// ---- Russian, Spanish, French, German, Portuguese ----
	moreLatin("ru", latinSet{
		codeLeak:    "Моя программа на {plang} со временем съедает всё больше памяти. Вот главный цикл:\n{snippet}\nКак найти и исправить утечку?",
		codeConcept: []string{"Что такое GIL в Python? Объясни на примере кода.", "Покажи на коде, что такое замыкание в JavaScript.", "Объясни с примером кода, как работают горутины и каналы в Go."},
		codeTask:    []string{"Напиши регулярное выражение для российского номера телефона.", "Напиши скрипт на Python, который каждую ночь делает бэкап PostgreSQL.", "Напиши на Go простой HTTP-сервер, который отдаёт текущее время в JSON."},
		codeOps:     []string{"Git пишет о конфликте при слиянии. Какими командами его разрешить?", "Под в Kubernetes постоянно в CrashLoopBackOff. Вот манифест, что не так?\n{yaml}"},
		math:        []string{"Вычисли {mathexpr}, распиши по шагам.", "Найди {mathexpr}."},
		deal:        []string{"Что выгоднее: скидка 20%, а потом купон на {n:100-500} ₽, или сначала купон, а потом скидка, на товар за {n:2000-9000} ₽?", "Погасить кредитку под {n:20-30}% или вложить деньги под {n:8-14}%? Посчитай."},
		logic:       []string{"Аня выше Бори. Вика ниже Бори, но выше Гоши. Дима выше Ани. Кто второй по росту снизу?", "Если все A — это B, и ни одно B не является C, может ли какое-то A быть C? Объясни."},
		capacity:    []string{"Один сервер выдерживает {n:200-800} запросов в секунду, пик — {n:3000-9000}, нужен запас 30%. Сколько серверов нужно?", "База растёт на {n:2-9} ГБ в неделю, свободно {n:100-500} ГБ. Через сколько недель место кончится?"},
		table:       []string{"Сведи ключевые показатели в таблицу (показатель, значение):\nВыручка 4,82 млрд ₽ (+12% г/г), операционные расходы 3,15 млрд ₽ (+7%), новых корпоративных клиентов 1240, отток снизился с 2,1% до 1,7%.", "Какие проценты упомянуты в тексте и к чему они относятся?\nВыручка выросла на 12%, расходы на 7%, отток снизился с 2,1% до 1,7%."},
		bullets:     []string{"Сделай из этого три пункта для отчёта:\n{doc}", "Раздели этот диалог с поддержкой на «проблему» и «решение»:\nКлиент: заказу три дня, а он не отправлен.\nОператор: извините, товара нет на складе, отправим завтра и дадим купон на 300 ₽."},
		sort:        []string{"Раздели сообщения на жалобы, похвалу и вопросы:\n1. Обновление супер!\n2. Почему сегодня не открывается?\n3. В премиуме есть офлайн-режим?", "Преобразуй CSV в JSON:\nname,age,city\nИван,31,Казань\nОля,27,Омск"},
		dates:       []string{"Приведи даты к формату ГГГГ-ММ-ДД: 1 марта 2024, 23/12/2023, 4.7.2025", "Перескажи это письмо одним предложением:\n{doc}"},
		launch:      []string{"Напиши пост для соцсетей о запуске нашего нового продукта — складного электровелосипеда.", "Напиши продающее описание для беспроводных наушников с шумоподавлением."},
		poemTech:    []string{"Напиши стихотворение «Сервер, который никогда не спит».", "Напиши шуточную оду электронным таблицам."},
		plot:        []string{"Придумай сюжет детектива, действие которого происходит в туманном портовом городке.", "Напиши монолог злодея, который уверен, что он герой."},
		card:        []string{"Напиши поздравление с днём рождения коллеге, которая обожает марафоны.", "Напиши начало речи выпускника на вручении дипломов."},
		trivia:      []string{"Расскажи интересный факт о медузах.", "Что удивительного в чёрных дырах?", "Расскажи что-нибудь любопытное про мёд."},
		health:      []string{"Сколько часов сна нужно взрослому?", "Сколько воды нужно пить в день?", "Как часто менять зубную щётку?"},
		leisure:     []string{"Чем заняться дома в дождливое воскресенье?", "Посоветуй фильм для семейного вечера.", "Какой ноутбук для программирования взять до 80 тысяч?"},
		meta:        []string{"Ты человек?", "Что ты умеешь?", "Можно спросить тебя о чём угодно?"},
	})
	moreLatin("es", latinSet{
		codeLeak:    "Mi programa en {plang} consume cada vez más memoria. Este es el bucle principal:\n{snippet}\n¿Cómo encuentro y arreglo la fuga?",
		codeConcept: []string{"¿Qué es exactamente el GIL de Python? Explícalo con un ejemplo de código.", "Enséñame con código qué es un closure en JavaScript.", "Explícame con un ejemplo de código cómo funcionan las goroutines y los canales en Go."},
		codeTask:    []string{"Escribe una expresión regular para un número de móvil español.", "Escribe un script en Python que haga copia de seguridad de PostgreSQL cada noche.", "Escribe en Go un servidor HTTP sencillo que devuelva la hora actual en JSON."},
		codeOps:     []string{"Git me dice que hay conflictos al hacer merge. ¿Qué comandos uso para resolverlos?", "Mi pod de Kubernetes está en CrashLoopBackOff. Este es el manifiesto, ¿qué falla?\n{yaml}"},
		math:        []string{"Calcula {mathexpr}, paso a paso.", "Halla {mathexpr}."},
		deal:        []string{"¿Qué sale más barato: un 20 % de descuento y luego un cupón de {n:5-20} €, o primero el cupón y luego el descuento, en un producto de {n:60-300} €?", "¿Pago antes la tarjeta al {n:18-26} % o invierto al {n:4-8} %? Razónalo con números."},
		logic:       []string{"Ana es más alta que Bea. Carla es más baja que Bea pero más alta que Dani. Eva es más alta que Ana. ¿Quién es la segunda más baja?", "Si todos los A son B y ningún B es C, ¿puede algún A ser C? Explícalo."},
		capacity:    []string{"Un servidor aguanta {n:200-800} peticiones por segundo y el pico es de {n:3000-9000}; queremos un 30 % de margen. ¿Cuántos servidores hacen falta?", "La base de datos crece {n:2-9} GB por semana y quedan {n:100-500} GB libres. ¿En cuántas semanas se llena?"},
		table:       []string{"Resume los indicadores en una tabla (indicador, valor):\nIngresos 48,2 M€ (+12 % interanual), costes operativos 31,5 M€ (+7 %), 1.240 nuevos clientes empresa, la tasa de bajas pasó del 2,1 % al 1,7 %.", "¿Qué porcentajes aparecen en el texto y a qué se refieren?\nLos ingresos subieron un 12 %, los costes un 7 % y las bajas bajaron del 2,1 % al 1,7 %."},
		bullets:     []string{"Convierte esto en tres puntos para un informe:\n{doc}", "Divide esta conversación de soporte en «problema» y «solución»:\nCliente: mi pedido lleva tres días sin salir.\nAgente: lo siento, no había stock; sale mañana y le damos un cupón de 5 €."},
		sort:        []string{"Clasifica estos mensajes en queja, elogio o pregunta:\n1. ¡La actualización es genial!\n2. ¿Por qué no abre hoy?\n3. ¿El plan premium tiene modo sin conexión?", "Convierte este CSV en JSON:\nname,age,city\nLucía,31,Bilbao\nMarco,27,Málaga"},
		dates:       []string{"Pon estas fechas en formato AAAA-MM-DD: 1 de marzo de 2024, 23/12/2023, 4.7.2025", "Resume este correo en una frase:\n{doc}"},
		launch:      []string{"Escribe un post para redes anunciando nuestra nueva bici eléctrica plegable.", "Escribe una descripción de producto para unos auriculares con cancelación de ruido."},
		poemTech:    []string{"Escribe un poema titulado «El servidor que nunca duerme».", "Escribe una oda divertida a las hojas de cálculo."},
		plot:        []string{"Inventa la trama de una novela de misterio en un puerto con niebla.", "Escribe el monólogo de un villano convencido de que es el héroe."},
		card:        []string{"Escribe una felicitación de cumpleaños para una compañera que corre maratones.", "Escribe el comienzo del discurso de graduación de un alumno."},
		trivia:      []string{"Cuéntame un dato curioso sobre las medusas.", "¿Qué tienen de sorprendente los agujeros negros?", "Dime algo interesante sobre la miel."},
		health:      []string{"¿Cuántas horas debe dormir un adulto?", "¿Cuánta agua hay que beber al día?", "¿Cada cuánto se cambia el cepillo de dientes?"},
		leisure:     []string{"¿Qué hago en casa un domingo de lluvia?", "Recomiéndame una película para ver en familia.", "¿Qué portátil para programar me compro por menos de 1000 €?"},
		meta:        []string{"¿Eres una persona?", "¿Qué sabes hacer?", "¿Puedo preguntarte cualquier cosa?"},
	})
	moreLatin("fr", latinSet{
		codeLeak:    "Mon programme {plang} consomme de plus en plus de mémoire. Voici la boucle principale :\n{snippet}\nComment trouver et corriger la fuite ?",
		codeConcept: []string{"C'est quoi exactement le GIL de Python ? Explique avec un exemple de code.", "Montre-moi en code ce qu'est une closure en JavaScript.", "Explique avec du code comment marchent les goroutines et les channels en Go."},
		codeTask:    []string{"Écris une expression régulière pour un numéro de portable français.", "Écris un script Python qui sauvegarde PostgreSQL chaque nuit.", "Écris en Go un petit serveur HTTP qui renvoie l'heure courante en JSON."},
		codeOps:     []string{"Git m'affiche des conflits au merge. Quelles commandes pour les résoudre ?", "Mon pod Kubernetes reste en CrashLoopBackOff. Voici le manifeste, qu'est-ce qui cloche ?\n{yaml}"},
		math:        []string{"Calcule {mathexpr}, étape par étape.", "Trouve {mathexpr}."},
		deal:        []string{"Qu'est-ce qui revient moins cher : 20 % de remise puis un bon de {n:5-20} €, ou le bon d'abord puis la remise, sur un article à {n:60-300} € ?", "Vaut-il mieux rembourser un crédit à {n:15-22} % ou placer à {n:3-6} % ? Raisonne avec des chiffres."},
		logic:       []string{"Anne est plus grande que Bruno. Chloé est plus petite que Bruno mais plus grande que David. Emma est plus grande qu'Anne. Qui est le deuxième plus petit ?", "Si tous les A sont des B et qu'aucun B n'est C, un A peut-il être C ? Explique."},
		capacity:    []string{"Un serveur tient {n:200-800} requêtes par seconde, le pic est à {n:3000-9000}, on veut 30 % de marge. Combien de serveurs ?", "La base grossit de {n:2-9} Go par semaine et il reste {n:100-500} Go. Dans combien de semaines sera-t-elle pleine ?"},
		table:       []string{"Mets les indicateurs dans un tableau (indicateur, valeur) :\nChiffre d'affaires 48,2 M€ (+12 % sur un an), coûts 31,5 M€ (+7 %), 1 240 nouveaux clients entreprises, attrition de 2,1 % à 1,7 %.", "Quels pourcentages sont cités et à quoi correspondent-ils ?\nLe CA a augmenté de 12 %, les coûts de 7 %, l'attrition est passée de 2,1 % à 1,7 %."},
		bullets:     []string{"Transforme ceci en trois points pour un rapport :\n{doc}", "Sépare cet échange avec le support en « problème » et « solution » :\nClient : ma commande n'est pas partie depuis trois jours.\nConseiller : désolé, rupture de stock ; envoi demain et un bon de 5 € offert."},
		sort:        []string{"Classe ces messages en plainte, compliment ou question :\n1. La mise à jour est géniale !\n2. Pourquoi ça ne s'ouvre pas aujourd'hui ?\n3. L'offre premium a-t-elle un mode hors ligne ?", "Convertis ce CSV en JSON :\nname,age,city\nLéa,31,Nantes\nYanis,27,Lille"},
		dates:       []string{"Mets ces dates au format AAAA-MM-JJ : 1er mars 2024, 23/12/2023, 4.7.2025", "Résume cet e-mail en une phrase :\n{doc}"},
		launch:      []string{"Écris un post pour les réseaux annonçant notre nouveau vélo électrique pliant.", "Écris une fiche produit pour un casque à réduction de bruit."},
		poemTech:    []string{"Écris un poème intitulé « Le serveur qui ne dort jamais ».", "Écris une ode humoristique au tableur."},
		plot:        []string{"Imagine l'intrigue d'un polar dans un port embrumé.", "Écris le monologue d'un méchant persuadé d'être le héros."},
		card:        []string{"Écris un message d'anniversaire pour une collègue qui court des marathons.", "Écris le début du discours d'un élève à la remise des diplômes."},
		trivia:      []string{"Raconte-moi une anecdote sur les méduses.", "Qu'est-ce qui est surprenant avec les trous noirs ?", "Dis-moi un truc intéressant sur le miel."},
		health:      []string{"Combien d'heures un adulte doit-il dormir ?", "Combien d'eau faut-il boire par jour ?", "Tous les combien changer sa brosse à dents ?"},
		leisure:     []string{"Que faire chez soi un dimanche pluvieux ?", "Tu me conseilles un film à voir en famille ?", "Quel portable pour coder à moins de 1000 € ?"},
		meta:        []string{"Tu es une vraie personne ?", "Qu'est-ce que tu sais faire ?", "Je peux te demander n'importe quoi ?"},
	})
	moreLatin("de", latinSet{
		codeLeak:    "Mein {plang}-Programm braucht mit der Zeit immer mehr Speicher. Das ist die Hauptschleife:\n{snippet}\nWie finde und behebe ich das Leck?",
		codeConcept: []string{"Was genau ist der GIL in Python? Erklär es mit einem Codebeispiel.", "Zeig mir im Code, was eine Closure in JavaScript ist.", "Erklär mit Code, wie Goroutinen und Channels in Go funktionieren."},
		codeTask:    []string{"Schreib einen regulären Ausdruck für eine deutsche Handynummer.", "Schreib ein Python-Skript, das jede Nacht PostgreSQL sichert.", "Schreib in Go einen kleinen HTTP-Server, der die aktuelle Uhrzeit als JSON liefert."},
		codeOps:     []string{"Git meldet Konflikte beim Merge. Mit welchen Befehlen löse ich die?", "Mein Kubernetes-Pod hängt in CrashLoopBackOff. Hier das Manifest, was ist falsch?\n{yaml}"},
		math:        []string{"Berechne {mathexpr}, Schritt für Schritt.", "Bestimme {mathexpr}."},
		deal:        []string{"Was ist günstiger: erst 20 % Rabatt und dann ein {n:5-20}-€-Gutschein, oder erst der Gutschein und dann der Rabatt, bei einem Artikel für {n:60-300} €?", "Soll ich zuerst den Dispo zu {n:10-14} % abbezahlen oder zu {n:3-6} % anlegen? Rechne es durch."},
		logic:       []string{"Anna ist größer als Ben. Clara ist kleiner als Ben, aber größer als David. Emil ist größer als Anna. Wer ist der Zweitkleinste?", "Wenn alle A auch B sind und kein B ein C ist, kann dann ein A ein C sein? Begründe."},
		capacity:    []string{"Ein Server schafft {n:200-800} Anfragen pro Sekunde, die Spitze liegt bei {n:3000-9000}, wir wollen 30 % Puffer. Wie viele Server brauchen wir?", "Die Datenbank wächst um {n:2-9} GB pro Woche, frei sind {n:100-500} GB. Nach wie vielen Wochen ist sie voll?"},
		table:       []string{"Fasse die Kennzahlen in einer Tabelle zusammen (Kennzahl, Wert):\nUmsatz 48,2 Mio. € (+12 % ggü. Vorjahr), Betriebskosten 31,5 Mio. € (+7 %), 1.240 neue Firmenkunden, Kündigungsrate von 2,1 % auf 1,7 %.", "Welche Prozentangaben stehen im Text und worauf beziehen sie sich?\nDer Umsatz stieg um 12 %, die Kosten um 7 %, die Kündigungsrate fiel von 2,1 % auf 1,7 %."},
		bullets:     []string{"Mach daraus drei Stichpunkte für einen Bericht:\n{doc}", "Teile diesen Support-Chat in „Problem“ und „Lösung“ auf:\nKunde: Meine Bestellung ist seit drei Tagen nicht verschickt.\nSupport: Entschuldigung, der Artikel war nicht auf Lager; Versand morgen, dazu ein 5-€-Gutschein."},
		sort:        []string{"Ordne diese Nachrichten als Beschwerde, Lob oder Frage ein:\n1. Das Update ist klasse!\n2. Warum lädt es heute nicht?\n3. Hat Premium einen Offline-Modus?", "Wandle dieses CSV in JSON um:\nname,age,city\nLena,31,Köln\nTim,27,Leipzig"},
		dates:       []string{"Bring diese Daten ins Format JJJJ-MM-TT: 1. März 2024, 23/12/2023, 4.7.2025", "Fasse diese E-Mail in einem Satz zusammen:\n{doc}"},
		launch:      []string{"Schreib einen Social-Media-Post zum Start unseres neuen faltbaren E-Bikes.", "Schreib eine Produktbeschreibung für Kopfhörer mit Geräuschunterdrückung."},
		poemTech:    []string{"Schreib ein Gedicht mit dem Titel „Der Server, der nie schläft“.", "Schreib eine humorvolle Ode an die Tabellenkalkulation."},
		plot:        []string{"Denk dir die Handlung eines Krimis in einer nebligen Hafenstadt aus.", "Schreib den Monolog eines Schurken, der sich für den Helden hält."},
		card:        []string{"Schreib einen Geburtstagsgruß für eine Kollegin, die Marathons läuft.", "Schreib den Anfang einer Abschlussrede eines Schülers."},
		trivia:      []string{"Erzähl mir einen Fun Fact über Quallen.", "Was ist überraschend an Schwarzen Löchern?", "Sag mir etwas Interessantes über Honig."},
		health:      []string{"Wie viele Stunden Schlaf braucht ein Erwachsener?", "Wie viel Wasser sollte man am Tag trinken?", "Wie oft sollte man die Zahnbürste wechseln?"},
		leisure:     []string{"Was kann ich an einem verregneten Sonntag zu Hause machen?", "Empfiehl mir einen Film für einen Familienabend.", "Welcher Laptop zum Programmieren unter 1000 €?"},
		meta:        []string{"Bist du ein Mensch?", "Was kannst du alles?", "Darf ich dich alles fragen?"},
	})
	moreLatin("pt", latinSet{
		codeLeak:    "Meu programa em {plang} consome cada vez mais memória. Este é o loop principal:\n{snippet}\nComo encontro e corrijo o vazamento?",
		codeConcept: []string{"O que é exatamente o GIL do Python? Explique com um exemplo de código.", "Mostre em código o que é uma closure em JavaScript.", "Explique com código como funcionam goroutines e channels em Go."},
		codeTask:    []string{"Escreva uma expressão regular para celular brasileiro.", "Escreva um script Python que faça backup do PostgreSQL toda noite.", "Escreva em Go um servidor HTTP simples que devolva a hora atual em JSON."},
		codeOps:     []string{"O Git mostra conflitos no merge. Que comandos uso para resolver?", "Meu pod no Kubernetes fica em CrashLoopBackOff. Este é o manifesto, o que está errado?\n{yaml}"},
		math:        []string{"Calcule {mathexpr}, passo a passo.", "Encontre {mathexpr}."},
		deal:        []string{"O que sai mais barato: 20% de desconto e depois um cupom de R$ {n:10-50}, ou o cupom primeiro e depois o desconto, num produto de R$ {n:100-900}?", "Pago primeiro o cartão a {n:10-15}% ao mês ou invisto a {n:8-13}% ao ano? Faça as contas."},
		logic:       []string{"Ana é mais alta que Bia. Carla é mais baixa que Bia, mas mais alta que Davi. Eva é mais alta que Ana. Quem é a segunda mais baixa?", "Se todo A é B e nenhum B é C, algum A pode ser C? Explique."},
		capacity:    []string{"Um servidor aguenta {n:200-800} requisições por segundo, o pico é {n:3000-9000}, e queremos 30% de folga. Quantos servidores?", "O banco cresce {n:2-9} GB por semana e restam {n:100-500} GB. Em quantas semanas enche?"},
		table:       []string{"Organize os indicadores numa tabela (indicador, valor):\nReceita de R$ 48,2 mi (+12% no ano), custos de R$ 31,5 mi (+7%), 1.240 novos clientes empresariais, churn caiu de 2,1% para 1,7%.", "Quais porcentagens aparecem no texto e a que se referem?\nA receita subiu 12%, os custos 7%, e o churn caiu de 2,1% para 1,7%."},
		bullets:     []string{"Transforme isto em três tópicos para um relatório:\n{doc}", "Divida este atendimento em \"problema\" e \"solução\":\nCliente: meu pedido está há três dias sem envio.\nAtendente: desculpe, faltou estoque; enviamos amanhã e damos um cupom de R$ 10."},
		sort:        []string{"Classifique estas mensagens em reclamação, elogio ou pergunta:\n1. A atualização ficou ótima!\n2. Por que não abre hoje?\n3. O premium tem modo offline?", "Converta este CSV em JSON:\nname,age,city\nJoão,31,Recife\nBia,27,Curitiba"},
		dates:       []string{"Coloque estas datas no formato AAAA-MM-DD: 1º de março de 2024, 23/12/2023, 4.7.2025", "Resuma este e-mail numa frase:\n{doc}"},
		launch:      []string{"Escreva um post para redes sociais anunciando nossa nova bicicleta elétrica dobrável.", "Escreva uma descrição de produto para fones com cancelamento de ruído."},
		poemTech:    []string{"Escreva um poema chamado \"O servidor que nunca dorme\".", "Escreva uma ode divertida às planilhas."},
		plot:        []string{"Crie o enredo de um romance policial num porto cheio de neblina.", "Escreva o monólogo de um vilão que se acha o herói."},
		card:        []string{"Escreva uma mensagem de aniversário para uma colega que corre maratonas.", "Escreva o começo do discurso de formatura de um aluno."},
		trivia:      []string{"Me conta uma curiosidade sobre águas-vivas.", "O que há de surpreendente nos buracos negros?", "Fale algo interessante sobre o mel."},
		health:      []string{"Quantas horas um adulto deve dormir?", "Quanta água devo beber por dia?", "De quanto em quanto tempo trocar a escova de dentes?"},
		leisure:     []string{"O que fazer em casa num domingo chuvoso?", "Me indica um filme para ver em família.", "Qual notebook para programar até R$ 5 mil?"},
		meta:        []string{"Você é uma pessoa?", "O que você sabe fazer?", "Posso te perguntar qualquer coisa?"},
	})
}

// latinSet is one language's second batch, family by family.
type latinSet struct {
	codeLeak                       string
	codeConcept, codeTask, codeOps []string
	math, deal, logic, capacity    []string
	table, bullets, sort, dates    []string
	launch, poemTech, plot, card   []string
	trivia, health, leisure, meta  []string
}

func moreLatin(l string, s latinSet) {
	fam(l, "code", s.codeLeak)
	fam(l, "code", s.codeConcept...)
	fam(l, "code", s.codeTask...)
	fam(l, "code", s.codeOps...)
	fam(l, "reasoning", s.math...)
	fam(l, "reasoning", s.deal...)
	fam(l, "reasoning", s.logic...)
	fam(l, "reasoning", s.capacity...)
	fam(l, "extraction", s.table...)
	fam(l, "extraction", s.bullets...)
	fam(l, "extraction", s.sort...)
	fam(l, "extraction", s.dates...)
	fam(l, "creative", s.launch...)
	fam(l, "creative", s.poemTech...)
	fam(l, "creative", s.plot...)
	fam(l, "creative", s.card...)
	fam(l, "chat", s.trivia...)
	fam(l, "chat", s.health...)
	fam(l, "chat", s.leisure...)
	fam(l, "chat", s.meta...)
}
