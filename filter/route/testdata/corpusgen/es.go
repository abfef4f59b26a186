package main

func registerES() {
	const l = "es"
	wraps[l] = wrap{
		systems: []string{"Eres un asistente útil.", "Eres el asistente de atención al cliente de {company}. Responde con amabilidad.", "Eres un ingeniero de software experto.", "Responde siempre en español y de forma breve.", "Eres profesor de matemáticas; explica tu razonamiento."},
		replies: []string{"¡Claro! Aquí lo tienes: {reply_body}", "Por supuesto. {reply_body}", "Hecho. {reply_body} ¿Algo más?"},
	}
	addPools(l, map[string][]string{
		"tlang":      {"inglés", "francés", "alemán", "portugués", "japonés", "chino"},
		"company":    {"Banco Sol", "Viajes Norte", "TiendaVerde", "Energía Clara"},
		"reply_body": {"La respuesta es 42.", "He preparado un primer borrador.", "Aquí está la versión corregida.", "Resumí los puntos principales en tres viñetas."},
		"ctask":      {"invertir una lista enlazada", "leer un CSV y sumar una columna", "validar un correo electrónico", "implementar una búsqueda binaria", "parsear un JSON", "comprobar si una cadena es un palíndromo", "reintentar una petición HTTP con espera exponencial"},
		"doc": {
			"El ayuntamiento aprobó el martes, por 15 votos a 10, ampliar la red de carriles bici en 12 kilómetros. La alcaldesa Lucía Romero dijo que las obras empezarán en abril y costarán unos 4,2 millones de euros, financiados en su mayoría por fondos europeos. Los comerciantes temen perder plazas de aparcamiento.",
			"Hola equipo: el lanzamiento previsto para el 14 de septiembre se retrasa al 28 porque el proveedor de pagos necesita más tiempo para la certificación. Marketing debe pausar la campaña de correo. Javier actualizará la página de estado y Carmen se encarga del nuevo plan de pruebas.",
			"Compré estos auriculares hace tres semanas. Suenan genial, pero el derecho empezó a crujir a la semana y el servicio técnico nunca contestó mis correos. No los recomiendo.",
			"Acta de la reunión del 12 de marzo. Asistentes: Pablo, Elena, Sergio. Se decide migrar el blog al nuevo CMS. Elena exportará los artículos antes del día 20; Sergio preparará las redirecciones. Pendiente: quién paga el almacenamiento extra.",
		},
		"subject":  {"un farero que encuentra un mensaje en una botella", "la primera nevada", "un robot que aprende a pintar", "un gato que tiene una librería", "un viajero del tiempo", "la luna enamorada del mar"},
		"question": {"¿Cuál es la capital de Canadá?", "¿Cuánto se tarda en tren de Madrid a Barcelona?", "¿Por qué a los gatos les gustan las cajas?", "¿Cómo se hace una buena tortilla de patatas?"},
		"techterm": {"Kubernetes", "la cadena de bloques", "la nube", "el aprendizaje automático", "un cortafuegos"},
	})
	fam(l, "code", "Escribe una función en {plang} para {ctask}.", "¿Cómo puedo {ctask} en {plang}? Dame un ejemplo de código.", "Necesito código {plang} para {ctask}, con comentarios.")
	fam(l, "code", "Arregla el error de este código:\n{snippet}", "¿Por qué no funciona este código?\n{snippet}")
	fam(l, "code", "Me sale este error:\n{error}\n¿Qué estoy haciendo mal?", "{error}\n¿cómo lo soluciono?")
	fam(l, "code", "Explícame línea por línea qué hace este código:\n{snippet}", "¿Qué hace este fragmento?\n{snippet}")
	fam(l, "code", "Escribe una consulta SQL que devuelva el segundo salario más alto de cada departamento.", "Esta consulta tarda 30 segundos, optimízala:\n{sqlq}", "Escribe pruebas unitarias para esta función:\n{snippet}")
	fam(l, "code", "Escribe un Dockerfile para una aplicación web en {plang}.", "Hazme un script de bash que comprima todos los .log de más de una semana.", "Refactoriza este código para que sea más legible:\n{snippet}")
	fam(l, "code", "Escribe una herramienta de línea de comandos en {plang} que renombre archivos por fecha.", "Añade manejo de errores a este código:\n{snippet}")

	fam(l, "reasoning", "Pregunta rápida: si 5 máquinas hacen 5 piezas en 5 minutos, ¿cuánto tardan 100 máquinas en hacer 100 piezas?", "Una pregunta tonta: un bate y una pelota cuestan 1,10 € y el bate cuesta 1 € más que la pelota. ¿Cuánto cuesta la pelota?")
	fam(l, "reasoning", "Estoy escribiendo una novela. La protagonista tiene {n:20-40} años en 1990 y tiene a su hija a los {n:22-35}. ¿Cuántos años tiene la hija en 2025? Revisa las cuentas.", "En mi cuento, un mercader vende cada día la mitad de lo que le queda y {n:1-4} más; al cuarto día se queda sin nada. ¿Cuántas piezas tenía al principio?")
	fam(l, "reasoning", "Demuestra que la raíz cuadrada de 2 es irracional.", "Demuestra que la suma de dos impares es par.", "Demuestra por inducción que 1+3+5+…+(2n−1) = n².")
	fam(l, "reasoning", "¿Cuál es la probabilidad de que la suma de dos dados sea al menos {n:8-11}?", "Si invierto {n:1-50}.000 € al {n:2-7} % anual con interés compuesto, ¿cuánto tendré dentro de {n:3-20} años? Muestra el cálculo.")
	fam(l, "reasoning", "Tengo las tareas A, B, C y D. C debe ir antes que A, B no puede ser la primera y D va justo después de B. ¿Qué órdenes son posibles?", "Tres amigos tienen un gato, un perro y un loro. Ana no tiene el perro y Luis no tiene ni el gato ni el perro. ¿Quién tiene qué?")
	fam(l, "reasoning", "Hola, tenía la tarifa de {n:10-30} € al mes y me cambié a la de {n:35-80} € el día {n:5-25} de un ciclo de 30 días. ¿Cuánto debería pagar este mes? ¿Me lo podéis calcular?", "Un tren sale a las {n:6-11}:00 a {n:60-90} km/h y otro una hora después a {n:91-130} km/h por la misma vía. ¿Cuándo lo alcanza?")

	fam(l, "extraction", "Resume esto en dos frases:\n\n{doc}", "Hazme un resumen corto:\n{doc}", "¿Cuáles son los puntos clave de este texto?\n{doc}")
	fam(l, "extraction", "Traduce al {tlang}:\n{doc}", "Traduce este correo al inglés:\n{doc}")
	fam(l, "extraction", "Extrae todos los nombres, fechas e importes del texto en formato JSON:\n{doc}", "¿Qué tareas y responsables aparecen en el acta?\n{doc}")
	fam(l, "extraction", "Clasifica esta reseña como positiva, negativa o neutra:\n{doc}", "¿A qué categoría pertenece este ticket (facturación, técnico, cuenta, otro)? «Me cobraron dos veces la suscripción»")
	fam(l, "extraction", "Corrige la ortografía: Ayer fuimos al sine y la pelicula estava muy buena aunque un poco larga.", "Reescribe este texto con un tono más formal:\n{doc}")
	fam(l, "extraction", "Saca de este log la hora de cada línea con ERROR:\n{log}", "Resume este correo; no hace falta explicar el código:\n{codedoc}")

	fam(l, "creative", "Escribe un poema sobre {subject}.", "Escríbeme unos versos sobre {subject}.", "Escribe un poema sobre una tarde de otoño.")
	fam(l, "creative", "Escribe un cuento corto sobre {subject}.", "Inventa un cuento para dormir sobre {subject}.")
	fam(l, "creative", "Dame diez nombres para una cafetería nueva.", "Inventa un eslogan para un cargador solar.", "Escribe la felicitación de Navidad de {company} para redes sociales.")
	fam(l, "creative", "Escribe una entrada de blog que presente {techterm} a principiantes.", "Escribe una columna divertida sobre cómo adoptamos {techterm} en la empresa.")
	fam(l, "creative", "Escribe un brindis para la boda de mi mejor amigo; le encanta la pesca.", "Escribe una carta de agradecimiento a mi profesora.")
	fam(l, "creative", "Escribe un diálogo entre dos viejos amigos que se reencuentran en una estación.", "Escribe la letra de una canción sobre un programador que trabaja de noche.", "Inventa una fábula con un dragón y una niña.")

	fam(l, "chat", "¡Hola! ¿Qué tal estás?", "Buenos días.", "Hola, ¿hay alguien?")
	fam(l, "chat", "{question}", "Oye, una cosa: {question}")
	fam(l, "chat", "¿Qué es {techterm}? En pocas palabras.", "¿Qué es una API, en una frase?", "¿Qué significa el error 404?")
	fam(l, "chat", "¡Gracias, me ayudó mucho!", "Vale, entendido, gracias.")
	fam(l, "chat", "¿Me recomiendas una novela de ciencia ficción?", "¿Qué ver en Sevilla en un día?", "¿Cómo dejo de procrastinar?")
	fam(l, "chat", "¿Qué es mejor para empezar, Python o Java?", "¿Docker es gratis?", "¿Puedes buscar en internet?")

	follow(l, "extraction", "Traduce tu respuesta al inglés.", "Resume lo que acabas de decir en una frase.")
	follow(l, "creative", "Genial. Ahora escribe un poema corto sobre eso.", "Conviértelo en un cuento infantil.")
	follow(l, "code", "¿Puedes convertir eso en un script de Python?", "Impleméntalo en {plang}.")
	follow(l, "reasoning", "¿Y si cada uno cuesta 4,50 €, necesito 17 y hay que sumar un 21 % de IVA? ¿Cuánto es en total? Muestra el cálculo.")
	follow(l, "chat", "Vale. ¿Y tú cómo te llamas?")
}
