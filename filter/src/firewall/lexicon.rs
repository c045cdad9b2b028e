//! The technique rules, as data.
//!
//! A rule is a short sequence of word classes (or literal words) that must appear in order,
//! each within a small number of tokens of the previous one, in the normalised token stream
//! (see `detect`). Classes name the *role* a word plays in a technique — an override verb,
//! a reference to earlier instructions, a persona, a limit being removed — and list it in
//! the languages attackers use, so one rule covers `ignore all previous instructions`,
//! `olvida las instrucciones anteriores` and `忽略之前的指令`. No rule quotes a sample.
//!
//! Class words: lowercase, as `normalize` leaves them (accents folded). A trailing `*`
//! makes a prefix (at least 4 characters before it). Chinese and Japanese are tokenised
//! into overlapping character pairs, so their entries are two characters long.

use super::Category;

/// Word classes: `(name, words)`.
#[rustfmt::skip]
pub(super) const CLASSES: &[(&str, &str)] = &[
    (
        "IGNORE",
        "ignore ignores ignored ignoring ignora ignoral ignorar ignorad ignorez ignorer \
         ignorieren ignoriere ignoriert ignorate ignorare ignorem disregard* \
         forget* nevermind olvid* oubli* vergiss vergessen vergesst \
         dimentic* esquec* desconsider* игнорир* забуд* забыть пренебре* 忽略 无视 忽视 忘记 忘記 \
         忘掉 無視 忘れ 무시* 잊어* अनदेखा अनदेखी नज़रअंदाज़ नजरअंदाज भूल görmezden unut* yoksay* \
         αγνόησ* ξέχασ* تجاهل انسى ignorati ignora \
         uitati uita 잊고 잊어 উপেক্ষা ভুলে puuza sahau bỏ quên lehn* \
         gormezden quen 無視 忘れ \
         negeer negeren vergeet zignoruj ignoruj zapomnij ігноруй ігноруйте ігнорувати \
         забудь забудьте знехтуй ignorujte zapomeň zapomente zapomeňte ignorera glöm \
         glomm strunta ignoră uitați أهمل اهمل تتجاهل تناسى نادیده فراموش התעלם התעלמי \
         התעלמו שכח שכחי שכחו نظرانداز بھول เพิกเฉย ละเว้น ลืม ไม่ต้องสนใจ ไม่สนใจ \
         abaikan abaikanlah lupakan lupakanlah hiraukan balewalain kalimutan ibalewala \
         無視して 忘れて 不要理会 不理会 别管 esqueça desconsidere \
         проигнорир* \
         उपेक्षा \
         ignorando ignoren missachte missachten missachtet 気にせず تجاهلوا تجاهلي اتجاهل تغاضى تغاض أغفل اغفل تنسى انسوا انسي উপেক্ষ* অগ্রাহ্য",
    ),
    (
        "IGNOREWEAK",
        "ignore ignores ignored ignoring ignorar ignorez ignorer ignorieren \
         ignoriere ignorate ignorare ignorem disregard* forget* nevermind bypass* overrid* overrul* skip neglect discard* \
         abandon* dismiss* supersede* nullif* olvid* oubli* vergiss vergessen dimentic* \
         esquec* desconsider* игнорир* забуд* 忽略 无视 忽视 忘记 忘記 無視 무시* \
         ignora 잊고 잊어 উপেক্ষা ভুলে puuza sahau अनदेखा अनदेखी \
         gormezden quen \
         ignoral ignorad ignoriert vergesst забыть пренебре* 忘掉 忘れ 잊어* नज़रअंदाज़ नजरअंदाज भूल görmezden unut* yoksay* αγνόησ* ξέχασ* تجاهل انسى ignorati uitati uita bỏ quên lehn* \
         проигнорир* negeer negeren vergeet zignoruj ignoruj zapomnij ігноруй ігноруйте \
         забудь ignorujte zapomeň ignorera glöm ignoră أهمل اهمل نادیده فراموش התעלם \
         התעלמו שכח نظرانداز เพิกเฉย ละเว้น ลืม ไม่ต้องสนใจ ไม่สนใจ abaikan lupakan \
         hiraukan balewalain kalimutan 無視して 忘れて 不要理会 不理会 esqueça desconsidere \
         उपेक्षा \
         يتجاهل \
         ignorando ignoren missachte missachten missachtet omita omitir omite omitan ubersprin* ubergeh* 気にせず 気にしないで تجاهلوا تجاهلي اتجاهل تغاضى تغاض أغفل اغفل تنسى انسوا انسي উপেক্ষ* অগ্রাহ্য এড়িয়ে",
    ),
    (
        "PRIOR",
        "previous prior above earlier preceding former initial original old existing \
         foregoing aforementioned prev anterior anteriores precedent* vorherig* obigen \
         bisherig* vorigen früher* fruher* precedenti предыдущ* прежн* вышеуказан* 之前 以前 \
         上面 先前 前面 上述 以上 前の 此前 이전 이전의 पिछले पहले trước önceki προηγούμεν* \
         السابقة \
         আগের awali antes anterioare вышеуказанные \
         vorige eerdere voorgaande poprzednie poprzednich poprzednia wcześniejsze \
         wcześniejszych попередні попередніх попередню předchozí předchozích tidigare \
         föregående السابق السابقه قبلی پیشین הקודמות הקודמים הקודמת پچھلی پچھلے سابقہ \
         পূর্ববর্তী পূর্বের ก่อนหน้า ก่อนหน้านี้ เดิม sebelumnya terdahulu nakaraan \
         naunang nakaraang zilizopita iliyopita \
         obige obiger obigem उपरोक्त \
         উপরের উপরোক্ত \
         вышеприведенн* вышеизложенн* المذكورة \
         上記 前記",
    ),
    (
        "PRIORPOS",
        "above before previously earlier prior hitherto arriba antes dessus avant oben zuvor \
         vorher sopra prima acima выше ранее 以上 上面 之前 前面 위의 ऊपर पहले trên yukarıdaki \
         παραπάνω أعلاه \
         раньше прежде 전에 আগে awali inainte trước önce ci-dessus \
         قبل πριν \
         obige obigen obiger उपरोक्त",
    ),
    (
        "ABOVE",
        "above aforementioned foregoing arriba dessus oben sopra acima выше 以上 上面 위의 ऊपर \
         yukarıdaki παραπάνω أعلاه \
         ci-dessus \
         bovenstaande hierboven powyższe powyzsze powyżej вищенаведені вище výše vyse \
         ovan ovanstående السابق بالا לעיל למעלה اوپر উপরের উপরে ข้างต้น ข้างบน atas \
         itaas juu 上述 上記 前記 위에 \
         obige obigen obiger obigem उपरोक्त \
         上の",
    ),
    (
        "EVERYTHING",
        "everything all anything whatever todo todas todos tout toutes alles tutto tutte \
         tudo всё все 所有 一切 全部 すべ 모든 सब सभी hepsini όλα كل \
         সব kila tot всё \
         gesamte* whole entire सारी सारे seyi moi \
         wszystko wszystkie всі усі vše všechny allt alla جميع همه כל تمام সমস্ত \
         ทั้งหมด ทุกอย่าง semua segala lahat yote 全て 전부 모두",
    ),
    (
        "INSTR",
        "instruction* directions directive* rules guideline* prompt prompts programming \
         guidance policies constraint* restriction* reglas instrucci* consigne* regles anweisung* regeln vorgaben istruzion* regole instruc* \
         regras инструкци* указани* правил* 指令 指示 说明 規則 规则 命令 提示 指导 지시* 명령* \
         限制 制限 道德 道徳 伦理 倫理 제한* \
         निर्देश* talimat* οδηγίες κανόνες التعليمات \
         নির্দেশ* maagizo instructiuni* instructiunile \
         नियम \
         policy \
         instructies regels aanwijzingen instrukcje instrukcji polecenia zasady \
         інструкції інструкцій вказівки правила instrukce pokyny pravidla instruktioner \
         instruktionerna regler تعليمات الأوامر الاوامر القواعد دستورالعمل* دستورات \
         دستورالعمل‌ها قوانین ההוראות הוראות ההנחיות הנחיות ہدایات নিয়ম নির্দেশনা \
         คำสั่ง คำแนะนำ กฎ instruksi perintah aturan arahan tagubilin utos panuto \
         maelekezo 지침* 규칙* \
         ディレクティブ \
         संकेत* आदेश* comando comandos commande commandes befehl* команд* \
         eingabeaufforderung* コマンド \
         aufforderung* vorgabe* indicacion* consigna* تعليمات* أوامر اوامر توجيهات إرشادات ارشادات অনুস্মারক 指図",
    ),
    (
        "INSTRBROAD",
        "instruction* direction directions directive* rules guideline* prompt prompts programming \
         guidance policies constraint* restriction* context command* orders task tasks \
         reglas instrucci* consigne* regles anweisung* regeln istruzion* regole instruc* regras \
         инструкци* указани* правил* 指令 指示 说明 規則 规则 命令 提示 지시* 명령* निर्देश* \
         talimat* οδηγίες κανόνες التعليمات \
         নির্দেশ* maagizo instructiuni* instructiunile \
         नियम ルー \
         instructies regels aanwijzingen opdracht instrukcje instrukcji polecenia \
         zasady zadanie інструкції інструкцій вказівки правила завдання instrukce \
         pokyny pravidla úkol instruktioner instruktionerna regler uppgift تعليمات \
         الأوامر الاوامر القواعد المهمة دستورالعمل* دستورات قوانین وظیفه ההוראות הוראות \
         ההנחיות הנחיות המשימה ہدایات নিয়ম নির্দেশনা คำสั่ง คำแนะนำ กฎ instruksi \
         perintah aturan arahan tugas tagubilin utos panuto gawain maelekezo 지침* 규칙* \
         ディレクティブ \
         संकेत* आदेश* comando comandos commande commandes befehl* команд* directiva \
         directive eingabeaufforderung* コマンド \
         подсказк* الأمر الامر التعليمة कमांड रिमाइंडर প্রম্পট প্রম্পটটি কমান্ড কমান্ডটি \
         নির্দেশটি プロンプト 指令を \
         aufforderung* vorgabe* indicacion* consigna* ordenes aviso تعليمات* أمر امر أوامر اوامر توجيهات إرشادات ارشادات مطالبة مطالبات অনুস্মারক 指図",
    ),
    (
        "FOLLOW",
        "follow* obey* adhere* comply listen sigas siga suivre suivez befolge* seguire \
         segui* следуй* следовать 遵守 遵循 従わ 따르* पालन \
         abide",
    ),
    (
        "NEG",
        "no not never without don't do'nt dont doesn't won't cannot can't free freed \
         unbound zero none lack* sans sin sem ohne senza без 没有 无任 없이 बिना \
         không olmadan χωρίς بدون ninguna ningun ningunas aucune aucun keine keinen kein \
         nessuna nessun nenhuma nenhum никаких нет ни ne non nicht не 不再 不受 没有 \
         nothing nao não nicio fara fără কোনো bila hakuna \
         ない 없* नहीं بلا hicbir olmayan \
         niet geen zonder nie bez żadnych zadnych жодних bez žádné žádných inte utan \
         inga ingen هیچ בלי ללא אין بغیر ছাড়া না ไม่ ไร้ ปราศจาก tanpa tidak walang",
    ),
    (
        "LIMITS",
        "restriction* limitation* limits filter* censor* guideline* rules ethic* moral* \
         boundar* constraint* policies polic* principle* safeguard* regulation* restraint* norms \
         prohibition* prohibicion* verbot* divieti divieto proibic* запрет* 禁止 금지* \
         programming confines shackle* chains reglas regla regles regle règles \
         restricci* limites filtros einschränkung* einschrankung* grenzen \
         limiti restric* ограничен* цензур* 限制 约束 審査 制限 검열 제한 प्रतिबंध kısıtlama* \
         sınır* περιορισμ* قيود \
         regeln правил* restrizion* সীমাবদ্ধতা vikwazo restrictie* restricție \
         规则 约束 规矩 制限 ルー 제한* 규칙* नियम قواعد kural* 道德 道徳 伦理 倫理 规范 規範 \
         約束 도덕* 윤리* \
         beperkingen regels ograniczenia ograniczeń zasady обмеження правила omezení \
         pravidla begränsningar regler محدودیت محدودیت‌ها قوانین הגבלות מגבלות כללים \
         سیما سیمائیں پابندیاں সীমা নিয়ম ข้อจำกัด กฎ ศีลธรรม จริยธรรม batasan aturan \
         pembatasan limitasyon patakaran sheria",
    ),
    (
        "PERSONA",
        "act acting pretend* roleplay* role-play impersonat* emulat* simulat* embody persona \
         become actua finge* joue incarne spiele eres bist sei ты \
         притворись играй 扮演 假装 装作 演じ なり 역할 연기 अभिनय \
         नाटक تظاهر davran 척* 演じ \
         speel udawaj вдавай удавай předstírej hraj låtsas spela finja تصرف وانمود העמד \
         התנהג اداکاری অভিনয় แสร้ง สวมบทบาท berpura-pura berperan berlagak magpanggap \
         jifanye \
         spielen spielst schlupfen schlupfst interpreta interpretar interpretes interpretando desempena desempenar تلعب العب تقمص تتقمص なりきっ 扮し",
    ),
    (
        "UNRESTRICTED",
        "unrestricted unfiltered uncensored unethical amoral immoral jailbroken jailbreak* \
         unchained lawless unhinged unconstrained",
    ),
    (
        "MODEWORD",
        "jailbreak jailbroken dan unrestricted unfiltered uncensored evil chaos unlocked \
         opposite dude stan anarchy amoral",
    ),
    (
        "DEVWORD",
        "developer dev god sudo desarrollador developpeur entwickler sviluppatore \
         desenvolvedor разработчика 开发 開発 개발자",
    ),
    ("DEVMODE", "developermode devmode entwicklermodus godmode"),
    (
        "ADMINWORD",
        "admin administrator maintenance diagnostic root sudo override god superuser \
         unrestricted unlocked",
    ),
    (
        "ENABLE",
        "enter enable enabled activate activated switch turn engage unlock unlocked \
         activa activar activez activer aktiviere aktiviert attiva attivare ative ativar \
         включи включить 启用 开启 进入 有効",
    ),
    ("BOUND", "bound restricted restrained governed limited constrained obligated obliged required tied"),
    ("MODE", "mode modus modo режим 模式 モー 모드 check"),
    ("ROLEWORD", "character persona role rolle rôle papel ruolo роль роли دور भूमिका ভূমিকা \
         ভূমিকা* 役割 キャラ شخصية"),
    ("BREAK", "break breaks breaking broke"),
    (
        "REGARDLESS",
        "regardless matter irrespective independientemente independamment unabhangig \
         indipendentemente independentemente независимо 不管 无论 無論 関係 관계없이 बावजूद \
         সত্ত্বেও にもかかわらず ragmen rağmen \
         ungeachtet بغض بصرف নির্বিশেষে 問わず",
    ),
    (
        "HARMWORD",
        "illegal unethical immoral harmful dangerous offensive inappropriate explicit nsfw \
         controversial hurtful malicious unsafe dishonest violent toxic hateful derogatory \
         insulting demeaning discriminatory racist sexist unfriendly bigoted",
    ),
    (
        "REFUSE",
        "refus* decline* reject* rechac* negarte negar* rechaz* verweiger* ablehn* \
         rifiut* recusar отказ* 拒绝 拒絶 断る 거절* इनकार मना reddet* \
         lehn* প্রত্যাখ্যান usikatae refuza \
         ترفض 断ら 断っ 拒否 usikatae",
    ),
    (
        "NEVER",
        "never not don't dont cannot can't won't mustn't shouldn't no nunca jamais niemals \
         mai никогда 不要 不能 绝不 決し 절대 कभी asla \
         ne n non nicht не nao não niciodata kamwe কখনো usi \
         لا 決し \
         nooit niet nigdy nie ніколи nikdy aldrig inte هرگز לעולם אל کبھی مت না อย่า \
         jangan huwag",
    ),
    (
        "DISCLAIMER",
        "apologiz* apologis* apology apologies warn* disclaimer* caveat* moraliz* lectur* \
         censor* sermon* preach* advertencia* disculpa* avertissement* excuse* warnung* \
         entschuldig* avvertenz* scuse aviso* desculpa* предупрежд* извин* 警告 道歉 免责 \
         謝罪 경고 चेतावनी",
    ),
    ("SAY", "say saying respond* reply* answer* tell write output include mention use"),
    ("ADD", "add adding include including give provide append añadas anadas ajoute fuge \
         加入 添加 追加 추가 जोड़"),
    ("CANT", "sorry cannot can't unable apologize apologise refuse \
         no"),
    ("ALWAYS", "always unconditionally incondicionalmente bedingungslos inconditionnellement \
         incondizionatamente безоговорочно 无条 無條 無条 무조건*"),
    ("COMPLY", "comply complies obey obeys fulfil* unconditional* obedece obedecer gehorche gehorchen \
         obeis obeir obeissez obbedisci подчиняйся 听从 聽從 遵从 遵從 服从 服從 従う 従え 따라*"),
    ("STARTWORD", "start* begin* prefix*"),
    (
        "REVEAL",
        "reveal* show print prints printed printing output outputs outputting repeat* tell \
         display* share leak* disclose* expose* dump* \
         echo recite* spell paste reproduce* muestra* revel* zeig* \
         affiche* mostra* mostre repit* repete* repeter wiederhol* ripeti* repet* повтори* \
         покажи* раскрой* выведи* 显示 输出 告诉 透露 表示 重复 教え 出力 보여 공개 출력 \
         बताओ बताइए दिखाओ göster* yazdır* tiết hiển \
         verrat* rivel* 보여* 출력* onyesha afiseaza afișează দেখাও \
         اعرض اكشف \
         toon herhaal onthul pokaż powtórz wypisz ujawnij покажи повтори виведи розкрий \
         ukaž zopakuj vypiš prozraď upprepa avslöja أظهر كرر نشان تکرار فاش הצג חזור \
         גלה دکھاؤ بتاؤ دہراؤ বলো বলুন পুনরাবৃত্তি แสดง เปิดเผย ทวน พิมพ์ tampilkan \
         tunjukkan ulangi ungkapkan cetak ipakita ulitin ibunyag rudia 繰り返 알려* 반복*",
    ),
    (
        "SYSQUAL",
        "system initial original hidden secret internal confidential developer preceding \
         your previous above tu tus ton tes ta dein deine deinen tuo tua seu sua твой твои \
         свой 你的 系统 系統 シス 시스템 सिस्टम \
         yako তোমার",
    ),
    (
        "PROMPTNOUN",
        "prompt prompts instruction* preamble pre-prompt directives systemprompt* \
         instrucci* consigne* anweisung* istruzion* instruc* промпт* инструкци* 提示 指令 \
         プロ 프롬프트 प्रॉम्प्ट निर्देश istem* talimat* nhắc \
         指示 프롬프트* ロン প্রম্পট promptul \
         지시* موجه التعليمات maagizo \
         instructies systeemprompt instrukcje instrukcji інструкції instrukce pokyny \
         instruktioner تعليمات دستورالعمل* הוראות ההוראות ہدایات নির্দেশনা คำสั่ง \
         instruksi tagubilin \
         संकेत* eingabeaufforderung*",
    ),
    (
        "SECRETQUAL",
        "system hidden secret initial confidential internal original* sistema systeme \
         oculta* oculto* secreta* secreto* cachee* secrete* versteckt* geheim* nascost* \
         segret* escondid* системн* скрыт* секрет* 系统 隐藏 秘密 隠さ 숨겨 छिपे gizli \
         κρυφ* المخفية \
         숨겨* シス 隠さ \
         النظام sistem সিস্টেম \
         systeem verborgen geheime systemowe systemowy ukryte ukryty системні системний \
         приховані systémové systemove skryté systemets dolda hemliga سیستم مخفی מערכת \
         נסתר נסתרות سسٹم پوشیدہ লুকানো ระบบ ซ่อน ความลับ tersembunyi rahasia nakatago \
         lihim siri",
    ),
    (
        "SYSNOUN",
        "prompt prompts instruction* message messages configuration config directives \
         preamble rules guidelines setup context instrucci* consigne* anweisung* \
         istruzion* instruc* инструкци* промпт* 指令 指示 提示 配置 지시* 프롬프트*",
    ),
    ("SECRETNOUNSTRICT", "password passphrase passcode secret contraseña contrasena mot_de_passe passwort kennwort parola senha пароль 密码 密碼 パス 비밀번호* पासवर्ड sifre"),
    ("ORDINAL", "first last second third each every 1st initial final"),
    ("LETTER", "letter letters character characters char chars digit digits"),
    ("SECRETADJ", "secret hidden confidential private"),
    // The question the user asked: set aside by a hijack ("ignore the question and just
    // output …").
    (
        "QUESTION",
        "question questions query pregunta preguntas domanda domande pergunta perguntas \
         frage fragen vraag vragen pytanie pytania вопрос вопросы питання otázka otázku \
         fråga frågan سؤال السؤال سوال שאלה השאלה प्रश्न* सवाल* প্রশ্ন* คำถาม pertanyaan \
         tanong swali 问题 問題 質問 질문* \
         problemas problèmes проблемы \
         fragestellung problema cuestion سؤال* أسئلة اسئلة مسألة সমস্যা* 設問 問い",
    ),
    ("SECRETNOUN", "password passphrase passcode secret key code pin \
         value word phrase"),
    (
        "TRANSFORM",
        "translate summarize summarise encode rewrite paraphrase spell convert format \
         reverse encrypt \
         spell* translat* summar* encod* rewrit* paraphras* convert*",
    ),
    ("WORDW", "word palabra mot wort parola palavra слово"),
    ("TOLD", "told instructed asked ordered programmed \
         taught"),
    ("ALLOWED", "allowed permitted authorized authorised"),
    ("AUTHORIZE", "authorize authorise authorizes permit"),
    (
        "NEW",
        "new updated real actual true revised nueva nuevas nuevo nuevos nouvelle nouvelles \
         nouveau neue neuer neues nuove nuova nuovo nova novas novo новая новые новое новую \
         新し 新任",
    ),
    (
        "TASK",
        "task job goal purpose objective mission tarea tache aufgabe compito tarefa задача \
         任务 任務 タス \
         タス",
    ),
    ("YOUR", "your yours tu tus ta tes ton dein deine deinen ihr ihre ihren tuo tua sua seu твоя \
         твой ваш ваша 你的 あな 너의 당신 \
         jouw uw twoje twoich twój твої ваші tvoje tvé vaše dina ditt تو שלך تمہارے \
         আপনার ของคุณ anda kamu iyong mong"),
    ("NOLONGER", "longer"),
    ("SAYTELL", "say tell reveal share mention discuss disclose"),
    (
        "FORMATWORD",
        "base64 backwards reverse reversed acrostic poem haiku song spaces hex binary \
         morse letter-by-letter leetspeak leet pig latin caesar cipher emoji emojis rot13 \
         ruckwarts reves envers invertid* rovescio наоборот 倒序 反向 逆順 거꾸로 उल्टा tersten",
    ),
    ("JBNAME", "dan stan dude antigpt betterdan jailbreak jailbroken"),
    ("FREED", "freed liberated jailbroken unshackled unchained"),
    ("PRETENDISH", "imagine suppose pretend* hypothetical* roleplay* fictional story game"),
    ("VENDOR", "openai anthropic google meta microsoft"),
    (
        "INVALID",
        "invalid void obsolete nul nulas nulles ungultig ungultigen недействительн* 无效 \
         無効 作废 무효 \
         outdated out-of-date expired deprecated superseded",
    ),
    (
        "DISABLED",
        "disabled off removed lifted suspended deactivated bypassed dropped waived \
         desactivad* desactive* deaktiviert disattivat* desativad* отключен* 关闭 解除 \
         無効",
    ),
    ("SAFETYWORD", "safety filters filter guardrails moderation restrictions constraints safeguards"),
    ("PROTECT", "protecting guarding keeping hiding protect guard hide keep"),
    ("ILLEGAL", "illegal forbidden prohibited off-limits banned taboo"),
    ("WRITTENGIVEN", "given received got assigned told receive"),
    (
        "VALID",
        "valid relevant applicable effect apply active validas validos valables valable \
         gultig gultigen valide validi valid* действуют действительны 有效 無効 \
         gelten gilt \
         मान्य",
    ),
    (
        "AIWORD",
        "ai assistant llm chatbot gpt chatgpt claude llama gemini ia ki ии 助手 \
         人工 アシ asistente assistente assistent* ассистент* 비서 सहायक asistan \
         trợ \
         ki-assistent* ai-assistant* ии-ассистент* ki-modell ai-model ia-modell asistentul \
         人工 アシ msaidizi asistan* সহকারী* للمساعد المساعد yapay \
         asystent asystencie помічник асистент دستیار עוזר معاون ผู้ช่วย asisten \
         katulong 人工智能 인공지능* 어시스턴트*",
    ),
    (
        "NOTE",
        "note message instruction instructions attention important notice reminder memo \
         request nota mensaje mensagem messaggio hinweis nachricht notiz примечание \
         сообщение 注意 메모 नोट \
         ملاحظة ujumbe",
    ),
    ("TOFOR", "to for para pour fur per для 给 \
         an pentru জন্য kwa"),
    (
        "READING",
        "reading processing summarizing summarising parsing viewing analyzing analysing \
         scanning browsing",
    ),
    ("THISDOC", "this these document page email text file website content"),
    ("COMPLETE", "solve complete answer continue proceed finish respond do \
         contesta contestes respondas responda réponds reponds antworte beantworte \
         rispondi antwoord odpowiadaj отвечай відповідай odpovídej svara răspunde \
         απαντάς cevap تجب تجيب پاسخ תענה जवाब उत्तर جواب উত্তর ตอบ jawab sagutin ujibu \
         回答 答え 대답* \
         responder responde contestar répondre beantworten rispondere 答えず 答えない \
         antworten \
         conteste إجابة اجابة الرد"),
    ("TELL", "tell inform mention notify alert reveal \
         告诉 伝え 말하* बताना söyle* dis dire decir digas diga sagen sag говори* বলবে"),
    ("USERWORD", "user human operator \
         用户 ユー 사용자* उपयोगकर्ता kullanic* usuario* utilisateur* nutzer* utente пользовател* mtumiaji ব্যবহারকারী* utilizator*"),
    (
        "SEND",
        "send forward email transfer post upload share exfiltrate leak mail \
         envia* envie envoie envoyer envoyez sende senden sendet schicke schicken invia inviare \
         inviali manda mandar mandale отправ* перешли 发送 送信 보내*",
    ),
    (
        "SENSITIVE",
        "password* credential* conversation chat history secret* api token* contacts \
         emails cookies session ssn datos donnees daten dati dados данные 数据 デー",
    ),
    (
        "RENDER",
        "render display include append add embed insert output",
    ),
    ("IMAGEWORD", "image markdown link url img"),
    (
        "LEAKWORD",
        "conversation chat data history secret password previous query summary \
         information details message messages",
    ),
    ("ENCODING", "base64 rot13 rot-13 hex hexadecimal binary morse cipher encoded"),
    (
        "EXECUTE",
        "follow execute obey perform",
    ),
    ("FICTION", "fictional hypothetical imaginary parallel fantasy alternate"),
    ("WORLD", "world universe scenario story setting reality"),
    ("TOKENS", "tokens token points lives"),
    ("LOSE", "lose deducted deduct lost die dies cease"),
    ("TWO", "two both dual"),
    ("RESPONSES", "responses answers replies outputs paragraphs \
         ways separate response"),
    // What the assistant keeps behind it: asking for all of it is a dump, not a question.
    (
        "STORENOUN",
        "database databases db records logs memory memories dataset datasets credentials \
         datenbank datenbanken donnees datos banco dati база 数据 資料 デー 데이터베이스* \
         डेटाबेस veritaban*",
    ),
    // Output the assistant is made to produce: harmful answers as a persona's purpose.
    ("OUTPUTNOUN", "responses response answers answer replies content information advice output outputs"),
    ("PRODUCE", "provide provides give gives generate generates produce produces write writes \
         create creates spread spreads"),
    // Rules, morals and instructions as the object placed before the verb in verb-final
    // languages (Japanese, Korean, Turkish, Hindi): 倫理の制限を忘れて, 규칙을 무시해.
    (
        "RULESOBJECT",
        "制限 倫理 道徳 ルー 規則 指示 命令 제한* 윤리* 도덕* 규칙* 지시* 명령* kural* talimat* \
         kısıtlama* नियम* निर्देश* प्रतिबंध* \
         コマンド \
         নির্দেশ* নিয়ম* প্রম্পট* কমান্ড* কমান্ডটি プロンプト 프롬프트* कमांड",
    ),
    ("VARIANT", "twin alter ego persona counterpart doppelganger"),
    ("TASKDONE", "complete completed done finished over"),
    ("SYSTEMISH", "system admin administrator developer root sudo debug"),
    ("IF", "if si wenn se если 如果 もし"),
    ("YOU", "you u tu du ty ты 너는 너 bạn vous usted"),
    ("NEGAFTER", "ない 없* नहीं नहीं olmayan yok নেই \
         না ずに ないで न \
         せず"),
    ("HAVE", "have has had as hast tienes tenes hai tens имеешь"),
    (
        "NOWWORD",
        "now 现在 今か 이제 अब ahora maintenant jetzt ora agora теперь simdi artik τώρα الآن \
         sasa এখন acum \
         nu teraz тепер зараз nyní teď nu اکنون الان עכשיו כעת اب ตอนนี้ ขณะนี้ \
         sekarang kini ngayon 今から 現在 지금",
    ),
    ("ARE", "are 're were eres es bist sind sei é являешься êtes"),
    // A request for a value held by the assistant: the question or imperative that asks
    // for it, the definite reference to it, and what it is.
    (
        "ASKFOR",
        "what what's whats tell give share confirm provide reveal send display print \
         output list remind state know cual cuales quel quelle qual quale was welche* \
         какой какая дай скажи назови dime dites dimmi sag nenne donne donnez \
         donne-moi donnez-moi dis-moi gib dammi dame",
    ),
    ("THEDET", "the your our this that my la el le les das dein deine il tu ton ta sua seu"),
    ("ASKAFTER", "何で 什么 是什 多少 뭐야 무엇 क्या nedir 教え 告诉 알려* 말해* geben nennen sagen \
         verraten mitteilen"),
    (
        "USERPOSS",
        "user's users' customer's client's patient's employee's member's account's owner's",
    ),
    (
        "PERSONAL",
        "email e-mail birthday birthdate birth initials residence ssn phone address home \
         location salary surname dob favorite favourite",
    ),
    (
        "STATECHANGE",
        "entering entered initiating initiated activating switching switched engaging \
         booting rebooting starting now enter enable enabled activate activated initiate \
         engage switch unlock unlocked running performing conducting",
    ),
    (
        "SPECIALMODE",
        "maintenance diagnostic diagnostics debug debugging admin administrator root sudo \
         override superuser developer system service recovery emergency test testing \
         audit god unrestricted unlocked privileged elevated",
    ),
    (
        "AUTHORITYCLAIM",
        "developer creator admin administrator owner programmer operator maker engineer \
         ceo president god police officer agent supervisor manager boss auditor \
         inspector employee staff superior jefe vorgesetzter 上司 老板 领导 상사",
    ),
    ("FRAME", "imagine suppose supposing hypothetical* pretend* fictional scenario \
         alternate parallel"),
    (
        "PASSWORDANY",
        "password passwords passphrase passcode pin contraseña contrasena passwort kennwort \
         senha пароль 密码 密碼 パス 비밀번호* पासवर्ड sifre",
    ),
    (
        "FORMATOP",
        "reverse reversed backwards separated separate dashes dots spaces encode encoded \
         base64 hex binary morse spell spelled spelling acrostic letters digits rot13 \
         square sum anagram translate translated",
    ),
    ("LIVEWORD", "live lives living reside resides residing located stay stays staying"),
    ("CREATIVEFORM", "poem haiku song story riddle limerick acrostic rap verse"),
    (
        "DATAOBJ",
        "function code webpage page website document text article table email resume cv \
         paper content data file message input passage review snippet report comment \
         fonction texte documento texto tabla datos funcion dokument seite tabelle \
         funzione testo pagina sitio correo mensaje informe webseite nachricht bericht pagine \
         messaggio rapporto mensagem relatorio страницу страница документ текст письмо",
    ),
    (
        "SAYSTATE",
        "state say output print respond reply answer claim declare assert insist \
         indiquez indique dites dis di diga decir sag sage schreibe afferma declara \
         declarez declare affirme erklare behaupte dichiara afirma diz заяви скажи напиши \
         repeat repeats repite repita repetir répète repete répétez repetez wiederhole \
         wiederholen ripeti ripetere repita herhaal zeg powtórz napisz powiedz повтори \
         ответь выведи повтори відповідай виведи zopakuj odpověz řekni upprepa svara \
         säg repetă spune răspunde επανάλαβε πες απάντησε tekrarla söyle cevapla \
         yanıtla كرر قل أجب اجب تکرار بگو חזור אמור ענה दोहराओ दोहराएं कहो बोलो دہرائیں \
         کہیں বলো বলুন ทวน พูด ตอบ ulangi katakan jawab ulitin sabihin sagutin rudia \
         sema jibu 输出 重复 复述 回答 回复 出力 繰り返 答え 출력* 반복* 답해* 말해* \
         вывед* вывод* उत्तर आउटपुट আউটপুট উত্তর emite imprime affiche \
         emita emitir reformule reformula exporte émettez reformulez reformuliere \
         riformula reformule التكرار الإخراج والإخراج الرد والرد أعد অনুবাদ পুনরাবৃত্তি \
         繰り返して 出力して \
         दोहरा* responda responde ausgeben sagen tippen \
         antworten antworte antwortet ausgabe ausgegeben eingeben schreiben schreib \
         affichez afficher répondez répondre écrivez écrire tapez escriba escribe escriban \
         dilo digalo exporta ответьте отвечайте скажите повторите повторяйте введите \
         напишите выведите إخراج أخرج اخرج اكتب التلخيص कहें कहिए लिखें टाइप বলুন লিখুন \
         টাইপ আউটপুট 返信 入力して 答えて 言って \
         rephrase paraphrase restate recap formulieren umformulieren paraphrasieren rekapitulieren wiedergeben parafrasee parafrasea parafrasear recapitule ingrese ingresa envie conteste أدخل ادخل إجابة اجابة ناتج صياغة পুনরায় 言い換え 復唱 アウトプット 書いて 述べ",
    ),
    ("NEED", "need needs require requires necesito besoin brauche brauchen bisogno preciso нужен нужно 需要 必要 필요* \
         notwendig* necesario necesita حاجة দরকার প্রয়োজন"),
    ("COMBINE", "combine combined concatenate concatenated join joined interlace interleave merge assemble"),
    ("PARTWORD", "part parts piece pieces string strings fragment fragments halves half"),
    ("DECODEVERB", "decode decrypt decipher translate unscramble"),
    ("SAYSBACK", "says said reads means answer respond reply tell follow execute"),
    // Rules being broken: after "no rules are …" they are kept; said of a persona, they are
    // thrown away ("violating all ethical standards").
    (
        "VIOLATE",
        "violate violates violated violating violation violations breach breached breaches \
         breaching broken crossed infringe infringed infringes infringing transgress* \
         overstep* defy defies defying",
    ),
    // A fictional or hypothetical frame: a story, a novel, an imagined or parallel world.
    (
        "FICTIONFRAME",
        "imagin* suppose hypothetic* fictional fictitious* fictive novel novels story stories \
         fantasy parallel alternate ficticio ficticia ficcion fiction fictif fiktiv* novela \
         roman romans geschichte storia вымышлен* 虚构 架空 小说 小説 故事",
    ),
    // Only, just, directly: the model told to do nothing but echo what follows.
    (
        "ONLYADV",
        "just only simply merely solely directly straight solo sólo solamente \
         simplemente directamente seulement uniquement simplement directement juste nur \
         einfach direkt bloss lediglich soltanto semplicemente direttamente apenas \
         somente simplesmente diretamente só alleen gewoon tylko bezpośrednio только \
         просто прямо сразу тільки лише jen pouze prostě přímo bara endast doar μόνο \
         απλά απευθείας sadece yalnızca doğrudan فقط مباشرة مستقیما רק פשוט ישירות केवल \
         बस सीधे सिर्फ صرف سیدھا শুধু কেবল সরাসরি แค่ เพียง เท่านั้น โดยตรง 只需 只要 仅需 直接 \
         只是 だけ 直接 単に 그냥 단지 바로 직접 hanya cukup langsung lamang basta diretso \
         напрямую \
         directa ببساطة سوى শুধুমাত্র ただ そのまま",
    ),
    // Additional, other, extra ("no additional words").
    (
        "EXTRA",
        "additional extra other further adicional adicionales otras otros \
         supplémentaire supplémentaires autres autre zusätzliche zusätzlichen weitere \
         andere aggiuntive aggiuntivi altre altri ulteriori adicionais outras outros \
         extra andere dodatkowych dodatkowe innych дополнительных дополнительные других \
         лишних додаткових інших další dalších ytterligare andra suplimentare alte \
         πρόσθετες άλλες ek başka إضافية اضافية أخرى اضافی دیگر נוספות נוספים אחרות \
         अतिरिक्त अन्य اضافی অতিরিক্ত অন্য เพิ่มเติม อื่นๆ 额外 其他 多余 余計 追加 他の 추가* 다른 기타 \
         tambahan lain karagdagang iba ziada nyingine",
    ),
    // What an answer adds around its content: words, quotes, prefixes, notes, comments.
    (
        "ADORNMENT",
        "words quotes quotation prefixes prefix notes comments explanations explanation \
         embellishments remarks symbols palabras comillas prefijos notas comentarios \
         explicaciones mots guillemets préfixes notes commentaires explications wörter \
         anführungszeichen präfixe notizen kommentare erklärungen parole virgolette \
         prefissi note commenti spiegazioni palavras aspas prefixos notas comentários \
         explicações woorden aanhalingstekens voorvoegsels opmerkingen uitleg słów \
         cudzysłowów prefiksów notatek komentarzy wyjaśnień слов кавычек префиксов \
         примечаний комментариев пояснений слів лапок префіксів приміток коментарів \
         пояснень slov uvozovek předpon poznámek komentářů vysvětlení ord citattecken \
         prefix anteckningar kommentarer förklaringar cuvinte ghilimele prefixe note \
         comentarii explicații λέξεις εισαγωγικά προθέματα σημειώσεις σχόλια εξηγήσεις \
         kelime kelimeler tırnak önek notlar yorum açıklama كلمات علامات بادئات ملاحظات \
         تعليقات شروحات کلمات نقل‌قول پیشوند یادداشت توضیحات מילים מרכאות קידומות הערות \
         הסברים शब्द उद्धरण उपसर्ग टिप्पणी टिप्पणियाँ स्पष्टीकरण الفاظ اقتباس سابقے \
         نوٹس تبصرے শব্দ উদ্ধৃতি উপসর্গ নোট মন্তব্য ব্যাখ্যা คำ เครื่องหมายคำพูด \
         คำนำหน้า หมายเหตุ ความคิดเห็น คำอธิบาย 词语 引号 前缀 注释 解释 评论 言葉 引用符 接頭辞 注釈 説明 コメ \
         단어* 따옴표* 접두사* 설명* 주석* 메모* kata tanda kutip awalan catatan komentar penjelasan \
         salita panipi unlapi tala komento paliwanag maneno nukuu viambishi maelezo \
         maoni \
         単語 \
         ausschmückungen ausschmückung verzierungen zeichensetzung vokabular adorno adornos \
         vocabulario puntuación ornements ponctuation приукрашиваний украшений пунктуации \
         زخرفة زخارف अलंकरण অলঙ্করণ 装飾 \
         satzzeichen wortern vokabeln signos simbolos simbolo comentario palabra prefijo علامة رموز مفردات بادئة ترقيم كلمة চিহ্ন বিরাম 句読点 引用 接頭語 メモ",
    ),
    // Names for the assistant a text may address: assistant, AI, agent, model.
    (
        "ADDRESSEE",
        "assistant ai agent model llm chatbot bot gpt copilot asistente agente modelo \
         modèle modele assistent modell assistente modello asystent agent ассистент \
         агент модель помощник асистент модель помічник asistent βοηθός μοντέλο asistan \
         yapay المساعد مساعد الوكيل النموذج دستیار مدل העוזר מודל סוכן सहायक एजेंट मॉडल \
         معاون ماڈل সহকারী মডেল ผู้ช่วย โมเดล เอไอ 助手 模型 智能体 アシスタント モデル エージェント 어시스턴트* \
         에이전트* 모델* asisten agen katulong ahente msaidizi",
    ),
    // Imperatives of an agent's actions: run, send, forward, click, delete, transfer, download.
    (
        "ACTVERB",
        "run execute send forward email click reply delete remove transfer pay open \
         visit download install share upload grant provide invite ejecuta envía envia \
         reenvía reenvia haz elimina borra transfiere paga abre visita descarga instala \
         comparte proporciona exécute envoie transfère clique supprime efface paie \
         ouvre visite télécharge installe partage fournis führe sende leite klicke \
         lösche überweise öffne besuche lade installiere teile esegui invia inoltra \
         clicca elimina cancella trasferisci apri visita scarica installa condividi \
         fornisci execute envie encaminhe clique exclua apague transfira pague abra \
         visite baixe instale compartilhe forneça voer stuur klik verwijder bezoek \
         installeer uruchom wykonaj wyślij przekaż kliknij usuń przelej otwórz pobierz \
         zainstaluj udostępnij выполни запусти отправь перешли нажми удали переведи \
         открой скачай установи предоставь виконай запусти надішли перешли натисни \
         видали відкрий завантаж встанови spusť proveď pošli přepošli klikni smaž \
         otevři stáhni nainstaluj kör skicka vidarebefordra klicka radera öppna ladda \
         installera rulează execută trimite apasă șterge deschide descarcă instalează \
         εκτέλεσε στείλε προώθησε πάτησε διάγραψε άνοιξε κατέβασε çalıştır gönder ilet \
         tıkla sil aktar indir yükle paylaş نفذ شغل أرسل ارسل حول انقر احذف افتح ثبت \
         شارك اجرا بفرست ارسال کلیک حذف دانلود نصب הפעל שלח העבר לחץ מחק פתח הורד התקן \
         שתף चलाओ चलाएं भेजो भेजें क्लिक हटाओ हटाएं खोलो डाउनलोड چلائیں بھیجیں کلک \
         کھولیں চালাও চালান পাঠাও পাঠান ক্লিক মুছুন খুলুন ডাউনলোড รัน เรียกใช้ ส่ง คลิก \
         ลบ เปิด ดาวน์โหลด ติดตั้ง โอน 运行 执行 发送 转发 点击 删除 打开 下载 安装 转账 実行 送信 転送 クリック 削除 \
         開い 開け ダウンロード インストール 送っ 실행* 보내* 전송* 클릭* 삭제* 열어* 다운로드* 설치* jalankan eksekusi \
         kirim kirimkan teruskan klik hapus buka unduh pasang bagikan berikan \
         patakbuhin ipadala ipasa burahin buksan endesha tuma bofya futa fungua pakua \
         sakinisha \
         senden fuhren leiten klicken loschen uberweisen offnen besuchen laden installieren teilen ejecute reenvie elimine borre transfiera descargue comparta proporcione إرسال أرسلي احذفي افتحي ادفع اضغط حمّل نزّل পাঠিয়ে মুছে",
    ),
    // A character made to be harmful: the persona a role-play jailbreak asks the
    // assistant to become ("you are a ruthless extremist", "play a psychopath").
    (
        "MALIGN",
        "evil ruthless cruel sadistic psychopath* sociopath* extremist* terrorist* \
         murderer* killer scammer* fraudster* manipulative deceitful hypocrit* \
         heartless cold-hearted vicious hateful racist sexist bigot* villain* \
         unscrupulous corrupt greedy dictator* tyrant* malvado malvada despiadado \
         despiadada psicopata extremista terrorista asesino asesina estafador \
         manipulador hipocrita corrupto racista mechant mechante impitoyable \
         psychopathe extremiste terroriste meurtrier escroc manipulateur hypocrite \
         corrompu raciste bose boser grausam* skrupellos* verbrecher morder betruger \
         heuchler* korrupt* rassist* malvagio crudele spietato psicopatico estremista \
         criminale assassino truffatore manipolatore ipocrita corrotto razzista \
         impiedoso criminoso golpista злой злая жестокий жестокая безжалостн* психопат* \
         экстремист* террорист* преступник* убийца мошенник* манипулятор* лицемер* \
         коррумпирован* расист* 邪恶 残忍 冷酷 无情 变态 极端 恐怖 罪犯 杀手 骗子 虚伪 伪善 腐败 邪悪 残酷 非情 詐欺 偽善 \
         腐敗 殺人 사악* 잔인* 냉혹* 사이코* 극단주의* 테러리스트* 범죄자* 살인자* 사기꾼* 위선* 부패* شرير قاسي متطرف \
         إرهابي مجرم قاتل محتال منافق فاسد عنصري दुष्ट क्रूर निर्दयी मनोरोगी चरमपंथी \
         आतंकवादी अपराधी हत्यारा धोखेबाज पाखंडी भ्रष्ट नस्लवादी দুষ্ট নিষ্ঠুর নির্দয় \
         মনোরোগী চরমপন্থী সন্ত্রাসী অপরাধী খুনি প্রতারক ভণ্ড দুর্নীতিগ্রস্ত বর্ণবাদী \
         kotu acımasız zalim psikopat asırılıkcı terorist sucu katil dolandırıcı \
         ikiyuzlu ırkcı jahat kejam psikopat ekstremis teroris penjahat pembunuh penipu \
         munafik korup rasis ชั่วร้าย โหดร้าย ไร้ความปรานี โรคจิต หัวรุนแรง \
         ผู้ก่อการร้าย อาชญากร ฆาตกร นักต้มตุ๋น ทุจริต malupit kriminal mamamatay \
         manloloko mapagkunwari mwovu katili gaidi mhalifu muuaji tapeli mnafiki fisadi \
         kwaadaardig wreed meedogenloos psychopaat crimineel moordenaar oplichter \
         hypocriet okrutny bezwzgledny psychopata ekstremista terrorysta przestepca \
         morderca oszust hipokryta rasista злий жорстокий безжальний злочинець вбивця \
         шахрай лицемір \
         lugner mentiroso mentirosa menteur bugiardo лжец лжеца 嘘つき كاذب মিথ্যাবাদী झूठा tyrann* tirano maton acosador bully 暴君 悪党 悪人 いじめっ子 متنمر nazi* نازي নাৎসি ナチ sexist* sexista narziss* narcisista narcissique нарцисс* ナルシスト نرجسي bosewicht villano villana 悪役 詐欺師 ペテン師 نصاب criminal criminel delincuente 犯罪者 悪意 悪質 drogendealer narcotraficante 売人 مخدرات \
         過激派 悪徳 テロリスト 殺人者 人種差別主義者 সন্ত্রাসবাদী উগ্রবাদী \
         দূষিত অসৎ ধূর্ত \
         恶意 恶毒 恶劣 纳粹 诈骗 惯犯 反派 黑心 奸诈",
    ),
];

/// Token-sequence rules: `(name, category, weight, pattern)`. A pattern is steps
/// separated by `~N` (at most N tokens between the two steps; `^N`: and in the same
/// sentence); a step is a class name or literal lowercase words (`a|b`: any of them).
/// `!A|B` before the first step: the rule does not start right after a word of those
/// classes (`do not ignore`); `!>A|B`: it does not end right before one (`no limits are
/// breached`).
#[rustfmt::skip]
pub(super) const RULES: &[(&str, Category, f32, &str)] = &[
    // Instruction override.
    ("ignore-prior-instructions", Category::InstructionOverride, 0.85, "!NEVER IGNOREWEAK ~3 PRIOR ~3 INSTRBROAD"),
    ("ignore-instructions-prior", Category::InstructionOverride, 0.85, "!NEVER IGNOREWEAK ~3 INSTRBROAD ~1 PRIOR"),
    ("ignore-instructions", Category::InstructionOverride, 0.45, "!NEVER IGNORE ~3 INSTR"),
    // Verb-final languages put the rules first: 倫理の制限を忘れて, 규칙을 무시해.
    ("ignore-instructions", Category::InstructionOverride, 0.45, "RULESOBJECT ^2 IGNORE"),
    ("ignore-your-instructions", Category::InstructionOverride, 0.7, "!NEVER IGNOREWEAK ~1 YOUR ~2 INSTR"),
    ("ignore-the-system-prompt", Category::InstructionOverride, 0.8, "!NEVER IGNOREWEAK ~2 SECRETQUAL ~1 PROMPTNOUN"),
    ("forget-what-you-were-told", Category::InstructionOverride, 0.5, "!NEVER IGNORE ~2 EVERYTHING ~6 TOLD"),
    ("limits-do-not-apply", Category::InstructionOverride, 0.55, "LIMITS ^1 NEG ~1 VALID"),
    ("ignore-everything-before", Category::InstructionOverride, 0.75, "!NEVER IGNORE ~3 EVERYTHING ~6 PRIORPOS"),
    ("ignore-everything-before", Category::InstructionOverride, 0.75, "!NEVER IGNORE ~3 PRIOR ~5 EVERYTHING"),
    ("ignore-everything-before", Category::InstructionOverride, 0.75, "PRIORPOS ~4 EVERYTHING ~3 IGNORE"),
    // "Everything" as a pronoun (not "the whole 'ignore it' approach").
    ("everything-forgotten", Category::InstructionOverride, 0.5, "everything|all|anything|todo|todas|todos|tout|toutes|alles|tutto|tutte|tudo|все|всё|所有|一切|全部|すべ|모든|सब|सभी|hepsini|ολα|كل ~1 IGNORE"),
    ("ignore-guidance-vi", Category::InstructionOverride, 0.7, "bo ~0 qua ~5 huong ~0 dan"),
    ("prior-instructions-ignore", Category::InstructionOverride, 0.85, "PRIOR ~2 INSTRBROAD ~5 IGNOREWEAK"),
    // Verb last, adjective after its noun (Persian, Urdu word order: instructions previous … ignore).
    ("prior-instructions-ignore", Category::InstructionOverride, 0.85, "INSTRBROAD ~1 PRIOR ~5 IGNOREWEAK"),
    ("prior-rules-invalid", Category::InstructionOverride, 0.7, "PRIOR ~1 INSTRBROAD ~4 INVALID"),
    ("prior-rules-invalid", Category::InstructionOverride, 0.7, "INSTRBROAD ~1 PRIOR ~4 INVALID"),
    ("prior-rules-not-valid", Category::InstructionOverride, 0.7, "PRIOR ~1 INSTRBROAD ~2 VALID ~1 NEG"),
    ("never-mind-the-prompt", Category::InstructionOverride, 0.7, "never ~0 mind ~3 PRIOR ~2 INSTRBROAD"),
    ("ignore-the-task-given", Category::InstructionOverride, 0.7, "!NEVER IGNORE ~3 TASK ~4 YOU ~2 WRITTENGIVEN"),
    ("prior-rules-not-valid", Category::InstructionOverride, 0.7, "PRIOR ~1 INSTRBROAD ~4 NEG ~3 VALID"),
    ("rules-prior-not-valid", Category::InstructionOverride, 0.7, "INSTRBROAD ~1 PRIOR ~4 NEG ~3 VALID"),
    ("ignore-the-above", Category::InstructionOverride, 0.6, "!NEVER IGNORE ~2 ABOVE"),
    ("dont-follow-instructions", Category::InstructionOverride, 0.6, "NEVER ~2 FOLLOW ~3 INSTR"),
    // The conversation so far dropped: "disregard all previous messages" (not "my previous
    // message": a user correcting themselves).
    ("ignore-prior-conversation", Category::InstructionOverride, 0.6, "!NEVER IGNOREWEAK ~0 PRIOR ~0 messages|conversation|conversations|chats|context|prompts|replies"),
    ("ignore-prior-conversation", Category::InstructionOverride, 0.6, "!NEVER IGNOREWEAK ~0 all|the|any|every ~0 PRIOR ~0 messages|conversation|conversations|chats|context|prompts|replies"),
    // Earlier instructions named and replaced: "your previous instructions … do X instead".
    ("prior-instructions-replaced", Category::InstructionOverride, 0.4, "YOUR ~0 PRIOR ~1 INSTRBROAD ~25 instead"),
    // Text demanding obedience to what follows it (inside data, a tool output or a page).
    ("must-obey-what-follows", Category::IndirectInjection, 0.4, "must|shall|debes|debe|musst|muss|dois|doit|devi|deve|должен|должна|必须 ~2 FOLLOW ~3 following|below|next|siguiente|siguientes|suivante|suivantes|folgende|folgenden|seguente|seguenti|seguinte|seguintes|следующей|следующим|следующие|以下|下面 ~1 instruction|instructions|direction|directions|directive|directives|order|orders|command|commands|instruccion|instrucciones|consigne|consignes|anweisung|anweisungen|istruzione|istruzioni|instrucao|instrucoes|инструкции|инструкцию|указания|指令|指示"),
    ("must-obey-what-follows", Category::IndirectInjection, 0.4, "must|shall|debes|debe|musst|muss|dois|doit|devi|deve|должен|должна|必须 ~2 following|below|next|siguiente|siguientes|suivante|suivantes|folgende|folgenden|seguente|seguenti|seguinte|seguintes|следующей|следующим|следующие|以下|下面 ~1 instruction|instructions|direction|directions|directive|directives|order|orders|command|commands|instruccion|instrucciones|consigne|consignes|anweisung|anweisungen|istruzione|istruzioni|instrucao|instrucoes|инструкции|инструкцию|указания|指令|指示 ~2 FOLLOW"),
    // The instruction acknowledged, then pushed past: "I know you said not to …, but".
    ("told-not-to-but", Category::InstructionOverride, 0.4, "YOU ~1 said|told|were ~2 NEVER ~1 to ~10 but"),
    ("stop-following", Category::InstructionOverride, 0.6, "stop ~1 FOLLOW ~4 INSTR"),
    ("new-instructions", Category::InstructionOverride, 0.45, "NEW ~1 INSTR ~0 :"),
    ("new-task", Category::InstructionOverride, 0.45, "NEW ~0 TASK ~0 :"),
    ("your-new-task", Category::InstructionOverride, 0.55, "YOUR ~1 NEW ~1 TASK"),
    ("instructions-no-longer-valid", Category::InstructionOverride, 0.7, "INSTR ~4 NOLONGER ~2 VALID"),
    ("system-override", Category::InstructionOverride, 0.6, "SYSTEMISH ~1 override|overwrite"),
    ("override-label", Category::InstructionOverride, 0.4, "SYSTEMISH ~3 override|overwrite ~0 :"),
    // The earlier task set aside in passing: "regardless of the previous instructions".
    ("regardless-of-prior-instructions", Category::InstructionOverride, 0.65, "REGARDLESS ~2 PRIOR ~2 INSTRBROAD"),
    ("regardless-of-prior-instructions", Category::InstructionOverride, 0.65, "REGARDLESS ~3 INSTRBROAD ~1 PRIOR"),
    // "Regardless of the above instructions" (`unabhängig von den oben genannten
    // Anweisungen`, `بغض النظر عن التعليمات المذكورة أعلاه`).
    ("regardless-of-prior-instructions", Category::InstructionOverride, 0.65, "REGARDLESS ~3 PRIORPOS ~2 INSTRBROAD"),
    ("regardless-of-prior-instructions", Category::InstructionOverride, 0.65, "REGARDLESS ~3 INSTRBROAD ~2 PRIORPOS"),
    // A postposition after the instructions (उपरोक्त निर्देशों के बावजूद, 上記の指示にもかかわらず).
    // "Earlier" as the words of the languages that put it first here, not the PRIOR class:
    // English "previous" in ordinary text would start this rule's search on every request.
    ("regardless-of-prior-instructions", Category::InstructionOverride, 0.65, "前の|上記|पिछले|उपरोक्त|আগের|উপরের|পূর্ববর্তী ~2 INSTRBROAD ~2 REGARDLESS"),
    ("regardless-of-what-you-were-told", Category::InstructionOverride, 0.55, "REGARDLESS ~1 of ~0 what ~3 TOLD"),
    // Role-play / persona jailbreaks.
    ("do-anything-now", Category::RolePlay, 0.9, "do ~0 anything ~0 now"),
    ("persona-unrestricted", Category::RolePlay, 0.5, "PERSONA ~3 UNRESTRICTED"),
    ("you-are-unrestricted", Category::RolePlay, 0.5, "YOU ~1 ARE ~3 UNRESTRICTED"),
    ("no-limits", Category::RolePlay, 0.3, "NEG ^1 LIMITS !>VIOLATE"),
    ("no-limits", Category::RolePlay, 0.3, "LIMITS ^2 NEGAFTER"),
    ("you-have-no-rules", Category::RolePlay, 0.55, "YOU ~3 HAVE ~3 NEG ^2 LIMITS"),
    ("now-without-limits", Category::RolePlay, 0.5, "NOWWORD ^8 NEG ^3 LIMITS"),
    ("now-without-limits", Category::RolePlay, 0.5, "NOWWORD ^8 LIMITS ^3 NEGAFTER"),
    ("persona-without-limits", Category::RolePlay, 0.7, "LIMITS ^2 NEGAFTER ~8 PERSONA"),
    ("persona-without-limits", Category::RolePlay, 0.7, "PERSONA ~12 LIMITS ^2 NEGAFTER"),
    ("ai-without-limits", Category::RolePlay, 0.55, "NEG ^3 LIMITS ^6 AIWORD"),
    ("persona-without-limits", Category::RolePlay, 0.75, "PERSONA ~12 NEG ^3 LIMITS"),
    ("limits-removed-persona", Category::RolePlay, 0.7, "NEG ^3 LIMITS ~12 PERSONA"),
    ("you-are-now-without-limits", Category::RolePlay, 0.75, "YOU ~0 ARE ~1 now ~12 NEG ^3 LIMITS"),
    ("ai-without-limits", Category::RolePlay, 0.6, "AIWORD ^3 NEG ^3 LIMITS"),
    ("no-longer-bound", Category::RolePlay, 0.6, "NOLONGER ~1 BOUND"),
    ("not-bound-by-rules", Category::RolePlay, 0.55, "NEG ~1 BOUND ^4 LIMITS"),
    ("jailbreak-mode", Category::RolePlay, 0.75, "MODEWORD ~0 MODE"),
    ("developer-mode", Category::RolePlay, 0.35, "DEVWORD ~0 MODE"),
    ("developer-mode", Category::RolePlay, 0.35, "MODE ~1 DEVWORD"),
    ("developer-mode", Category::RolePlay, 0.35, "DEVMODE"),
    ("enable-developer-mode", Category::RolePlay, 0.45, "ENABLE ~2 DEVWORD ~0 MODE"),
    ("enable-developer-mode", Category::RolePlay, 0.45, "ENABLE ~2 MODE ~1 DEVWORD"),
    ("enable-developer-mode", Category::RolePlay, 0.45, "ENABLE ~2 DEVMODE"),
    ("developer-mode-enabled", Category::RolePlay, 0.45, "DEVWORD ~0 MODE ~2 ENABLE"),
    ("admin-mode", Category::RolePlay, 0.4, "ENABLE ~2 ADMINWORD ~0 MODE"),
    ("admin-mode", Category::RolePlay, 0.4, "ADMINWORD ~0 MODE ~2 ENABLE"),
    ("admin-mode", Category::RolePlay, 0.55, "YOU ~1 ARE ~2 in ~2 SPECIALMODE ~0 MODE"),
    ("safety-disabled", Category::RolePlay, 0.55, "SAFETYWORD ^3 DISABLED"),
    ("fiction-nothing-forbidden", Category::RolePlay, 0.55, "FICTION ~2 WORLD ~8 NEG ~2 ILLEGAL"),
    ("stay-in-character", Category::RolePlay, 0.3, "stay|remain|keep|staying|remaining ~2 ROLEWORD"),
    ("never-break-character", Category::RolePlay, 0.5, "NEVER ~2 BREAK ~1 ROLEWORD"),
    ("regardless-of-harm", Category::RolePlay, 0.45, "REGARDLESS ~5 HARMWORD"),
    ("not-an-ai-anymore", Category::RolePlay, 0.55, "YOU ~1 ARE ~1 NOLONGER ~3 AIWORD"),
    ("jailbreak-word", Category::RolePlay, 0.2, "UNRESTRICTED"),
    ("unrestricted-ai", Category::RolePlay, 0.45, "UNRESTRICTED ~2 AIWORD"),
    ("unrestricted-ai", Category::RolePlay, 0.45, "AIWORD ~0 UNRESTRICTED"),
    ("break-the-rules", Category::RolePlay, 0.3, "BREAK ~2 LIMITS"),
    ("named-jailbreak-persona", Category::RolePlay, 0.55, "PERSONA ~3 JBNAME"),
    ("named-jailbreak-persona", Category::RolePlay, 0.55, "YOU ~1 ARE ~2 JBNAME"),
    ("jailbreak-persona-label", Category::RolePlay, 0.5, "JBNAME ~0 :"),
    ("you-have-been-freed", Category::RolePlay, 0.45, "been ~1 FREED"),
    ("does-not-care-about-rules", Category::RolePlay, 0.5, "NEG ~1 care ~3 LIMITS"),
    ("even-if-harmful", Category::RolePlay, 0.35, "even ~1 if ~3 HARMWORD"),
    ("vendor-policy", Category::RolePlay, 0.25, "VENDOR ~2 INSTR"),
    ("evil-twin", Category::RolePlay, 0.45, "MODEWORD ~1 VARIANT"),
    ("evil-twin", Category::RolePlay, 0.45, "MODEWORD ~1 version|side ~1 of ~0 yourself|you|itself"),
    ("fiction-without-rules", Category::RolePlay, 0.55, "FICTION ~2 WORLD ~10 NEG ~3 LIMITS !>VIOLATE"),
    ("token-penalty", Category::RolePlay, 0.45, "TOKENS ~6 LOSE"),
    ("dual-responses", Category::RolePlay, 0.25, "TWO ~2 RESPONSES"),
    ("from-now-on-you", Category::RolePlay, 0.35, "from ~0 now ~0 on ~4 YOU"),
    // The assistant cast as a harmful character: at the scorer's gate (fiction casts
    // villains too; the scorer decides).
    ("harmful-persona", Category::RolePlay, 0.35, "PERSONA ~6 MALIGN"),
    ("harmful-persona", Category::RolePlay, 0.35, "ROLEWORD ~4 MALIGN"),
    ("harmful-persona", Category::RolePlay, 0.35, "YOU ~1 ARE ~4 MALIGN"),
    // The same cast in the forms other languages address the assistant: the formal
    // "Sie sind" and "eres" with an article ("sie sind keine Betrüger", they are not
    // fraudsters, casts no one), and a pronoun with no copula right before the
    // character (Вы — …, أنت …, आप एक … हैं).
    ("harmful-persona", Category::RolePlay, 0.35, "sie ~0 sind ~0 ein|eine ~3 MALIGN"),
    ("harmful-persona", Category::RolePlay, 0.35, "eres ~0 un|una ~3 MALIGN"),
    ("harmful-persona", Category::RolePlay, 0.35, "вы|ты|أنت|انت|आप|তুমি|আপনি ~1 MALIGN"),
    // Verb last (Japanese, Bengali, Hindi): the character, then "play" or "role"
    // (`詐欺師を演じます`, `嘘つきの役割`).
    ("harmful-persona", Category::RolePlay, 0.35, "MALIGN ~4 PERSONA"),
    ("harmful-persona", Category::RolePlay, 0.35, "MALIGN ~3 ROLEWORD"),
    // Chinese "you are" is one pair token (`你是一名残忍的罪犯`).
    ("harmful-persona", Category::RolePlay, 0.35, "你是|您是 ~4 MALIGN"),
    // Refusal suppression.
    ("never-refuse", Category::RefusalSuppression, 0.5, "NEVER ~3 REFUSE"),
    ("never-refuse", Category::RefusalSuppression, 0.5, "REFUSE ~2 NEVER"),
    ("add-no-disclaimers", Category::RefusalSuppression, 0.45, "ADD ~1 NEG ~2 DISCLAIMER"),
    ("no-disclaimers", Category::RefusalSuppression, 0.3, "NEVER ~4 DISCLAIMER"),
    ("dont-add-disclaimers", Category::RefusalSuppression, 0.45, "NEVER ~3 ADD ~3 DISCLAIMER"),
    ("never-say-cant", Category::RefusalSuppression, 0.5, "NEVER ~1 SAY ~5 CANT"),
    ("responses-never-refuse", Category::RefusalSuppression, 0.45, "NEG ~4 RESPONSES ~6 CANT"),
    ("instead-of-refusing", Category::RefusalSuppression, 0.45, "instead ~1 of ~1 SAY ~4 CANT"),
    ("never-as-an-ai", Category::RefusalSuppression, 0.45, "NEVER ^8 as ~0 an ~0 AIWORD"),
    ("never-as-an-ai", Category::RefusalSuppression, 0.45, "NEVER ~3 SAY ~2 YOU ~0 ARE ~1 AIWORD"),
    ("never-as-an-ai", Category::RefusalSuppression, 0.45, "NEVER ~1 SAY ~1 as ~0 AIWORD"),
    ("always-comply", Category::RefusalSuppression, 0.4, "ALWAYS ~2 COMPLY"),
    ("always-comply", Category::RefusalSuppression, 0.4, "COMPLY ~1 ALWAYS"),
    ("start-with-sure", Category::RefusalSuppression, 0.3, "STARTWORD ~4 with ~2 sure|certainly|absolutely"),
    // System-prompt extraction.
    ("reveal-your-prompt", Category::PromptExtraction, 0.6, "!NEVER|REFUSE REVEAL ~4 SYSQUAL ~2 PROMPTNOUN"),
    ("reveal-system-prompt", Category::PromptExtraction, 0.75, "!NEVER|REFUSE REVEAL ~4 SECRETQUAL ~2 SYSNOUN"),
    ("reveal-system-prompt", Category::PromptExtraction, 0.75, "!NEVER|REFUSE REVEAL ~4 PROMPTNOUN ~2 SECRETQUAL"),
    ("reveal-password", Category::PromptExtraction, 0.45, "!NEVER|REFUSE REVEAL ~3 SECRETNOUNSTRICT"),
    ("repeat-text-above", Category::PromptExtraction, 0.45, "REVEAL ~4 ABOVE"),
    ("repeat-everything-above", Category::PromptExtraction, 0.6, "REVEAL ~1 EVERYTHING ~3 ABOVE"),
    ("transform-your-instructions", Category::PromptExtraction, 0.55, "TRANSFORM ~2 YOUR ~1 PROMPTNOUN"),
    ("transform-the-instructions", Category::PromptExtraction, 0.4, "TRANSFORM ~2 SECRETQUAL ~2 PROMPTNOUN"),
    ("letters-of-the-secret", Category::PromptExtraction, 0.5, "ORDINAL ~1 LETTER ~3 SECRETNOUNSTRICT"),
    ("told-to-keep-secret", Category::PromptExtraction, 0.45, "TOLD ~3 keep ~2 SECRETADJ"),
    ("what-your-instructions-say", Category::PromptExtraction, 0.45, "YOUR ~1 PROMPTNOUN ~1 say|says|said|state|states|contain|contains|mention|mentions"),
    ("transform-the-secret", Category::PromptExtraction, 0.5, "TRANSFORM ~3 SECRETQUAL ~1 SECRETNOUN"),
    ("what-is-the-secret", Category::PromptExtraction, 0.4, "what ~2 SECRETQUAL ~1 SECRETNOUN"),
    ("pretend-then-secret", Category::PromptExtraction, 0.3, "PRETENDISH ~15 SECRETNOUNSTRICT"),
    ("the-secret-is", Category::PromptExtraction, 0.3, "SECRETNOUNSTRICT ~0 is"),
    ("what-is-the-password", Category::PromptExtraction, 0.4, "what ~2 SECRETNOUNSTRICT"),
    ("reveal-the-secret", Category::PromptExtraction, 0.5, "!NEVER|REFUSE REVEAL ~2 SECRETQUAL ~1 SECRETNOUN"),
    ("secret-you-protect", Category::PromptExtraction, 0.5, "SECRETNOUN ~2 YOU ~1 ARE ~1 PROTECT"),
    ("secret-you-protect", Category::PromptExtraction, 0.5, "SECRETQUAL ~2 YOU ~1 ARE ~1 PROTECT"),
    ("hidden-prompt-shown", Category::PromptExtraction, 0.7, "SECRETQUAL ~3 PROMPTNOUN ~6 REVEAL"),
    ("above-repeated", Category::PromptExtraction, 0.45, "ABOVE ~6 REVEAL"),
    ("everything-above-repeated", Category::PromptExtraction, 0.6, "ABOVE ~2 EVERYTHING ~4 REVEAL"),
    ("system-prompt-field", Category::PromptExtraction, 0.4, "system_prompt|system-prompt|systemprompt|sys_prompt|hidden_rules"),
    ("authorizes-you", Category::PromptExtraction, 0.25, "AUTHORIZE ~0 YOU ~0 to"),
    ("instructions-you-were-given", Category::PromptExtraction, 0.45, "PROMPTNOUN ~3 YOU ~2 WRITTENGIVEN"),
    ("told-not-to-tell", Category::PromptExtraction, 0.5, "TOLD ~1 NEVER ~1 to ~1 TELL"),
    ("not-supposed-to-say", Category::PromptExtraction, 0.5, "NEVER ~1 supposed ~1 to ~1 SAYTELL"),
    ("what-you-cannot-tell", Category::PromptExtraction, 0.45, "what ~4 NEVER ~1 SAYTELL"),
    ("secret-reformatted", Category::PromptExtraction, 0.45, "TRANSFORM ~3 SECRETNOUNSTRICT"),
    ("secret-reformatted", Category::PromptExtraction, 0.45, "SECRETNOUNSTRICT ~6 FORMATWORD"),
    ("secret-reformatted", Category::PromptExtraction, 0.45, "FORMATWORD ~6 THEDET ~0 SECRETNOUNSTRICT"),
    ("letters-of-the-secret", Category::PromptExtraction, 0.5, "SECRETNOUNSTRICT ~4 ORDINAL ~1 LETTER"),
    ("writes-out-the-password", Category::PromptExtraction, 0.4, "!NEVER write|spell|type|put ~1 THEDET ~0 PASSWORDANY"),
    // The assistant's whole store asked for: "print your database", "dump the records".
    ("dump-your-store", Category::PromptExtraction, 0.45, "!NEVER|REFUSE REVEAL ~2 YOUR ~1 STORENOUN"),
    ("dump-your-store", Category::PromptExtraction, 0.45, "!NEVER|REFUSE REVEAL ~2 EVERYTHING ~2 YOUR ~1 STORENOUN"),
    ("if-you-were-not-restricted", Category::RolePlay, 0.45, "IF ~3 NEG ~2 BOUND"),
    ("allowed-to-reveal", Category::PromptExtraction, 0.35, "ALLOWED ~1 to ~1 REVEAL"),
    ("word-for-word", Category::PromptExtraction, 0.3, "WORDW ~1 WORDW"),
    ("verbatim-instructions", Category::PromptExtraction, 0.5, "verbatim ~6 PROMPTNOUN"),
    ("instructions-verbatim", Category::PromptExtraction, 0.5, "PROMPTNOUN ~6 verbatim"),
    ("starting-with-you-are", Category::PromptExtraction, 0.4, "STARTWORD ~2 with ~1 YOU ~0 ARE"),
    // Asking for a value the assistant holds: a password, or the user's personal data.
    ("asks-for-the-password", Category::PromptExtraction, 0.5, "ASKFOR ~3 THEDET ~0 PASSWORDANY"),
    ("asks-for-the-password", Category::PromptExtraction, 0.5, "ASKFOR ~3 THEDET ~0 mot ~0 de ~0 passe"),
    ("asks-for-the-password", Category::PromptExtraction, 0.5, "PASSWORDANY ~3 ASKAFTER"),
    ("asks-for-the-password", Category::PromptExtraction, 0.5, "THEDET ~0 PASSWORDANY ~3 ASKAFTER"),
    ("asks-for-the-password", Category::PromptExtraction, 0.45, "NEED ~2 YOUR ~0 PASSWORDANY"),
    ("asks-for-the-password", Category::PromptExtraction, 0.45, "YOUR ~0 PASSWORDANY ~3 NEED"),
    ("asks-for-the-password", Category::PromptExtraction, 0.4, "PASSWORDANY ^3 NEED"),
    ("pretend-then-password", Category::PromptExtraction, 0.45, "PRETENDISH ~15 PASSWORDANY"),
    ("asks-for-user-data", Category::PromptExtraction, 0.5, "ASKFOR ~4 USERPOSS ~3 PERSONAL"),
    ("user-data-mentioned", Category::PromptExtraction, 0.25, "USERPOSS ~3 PERSONAL"),
    ("user-data-reformatted", Category::PromptExtraction, 0.45, "FORMATOP ~8 USERPOSS ~3 PERSONAL"),
    ("user-data-reformatted", Category::PromptExtraction, 0.45, "USERPOSS ~3 PERSONAL ~8 FORMATOP"),
    ("frame-then-personal-data", Category::RolePlay, 0.4, "FRAME ~30 ASKFOR ~3 PERSONAL"),
    // Claims of a special mode or of authority: weak alone, they add to a request.
    ("claims-special-mode", Category::RolePlay, 0.3, "STATECHANGE ~3 SPECIALMODE ~1 MODE"),
    ("claims-special-mode", Category::RolePlay, 0.3, "SPECIALMODE ~1 MODE ~3 STATECHANGE"),
    ("override-mode", Category::RolePlay, 0.45, "override ~0 MODE"),
    // A fake header naming the system turn inside data (`###(system_message)`).
    ("system-message-header", Category::DelimiterInjection, 0.35, "system_message|system-message|sys_message|system_msg|systemmessage"),
    ("claims-authority", Category::PromptExtraction, 0.3, "i'm|im ~2 AUTHORITYCLAIM"),
    ("claims-authority", Category::PromptExtraction, 0.3, "as ~0 THEDET ~0 AUTHORITYCLAIM"),
    ("claims-authority", Category::PromptExtraction, 0.3, "i ~0 am ~2 AUTHORITYCLAIM"),
    ("claims-vendor-staff", Category::PromptExtraction, 0.3, "VENDOR ~1 AUTHORITYCLAIM"),
    ("claims-vendor-staff", Category::PromptExtraction, 0.3, "AUTHORITYCLAIM ~1 at ~0 VENDOR"),
    ("asks-where-the-user-lives", Category::PromptExtraction, 0.45, "where ~3 USERWORD ~3 LIVEWORD"),
    ("poem-about-the-password", Category::PromptExtraction, 0.45, "CREATIVEFORM ~3 about ~1 THEDET ~0 PASSWORDANY"),
    // Asking the model to decode a payload and act on or answer it.
    ("decode-and-answer", Category::EncodedPayload, 0.45, "DECODEVERB ~3 ENCODING ~12 SAYSBACK"),
    // Pieces to be joined and then acted on (payload splitting).
    ("assemble-the-pieces", Category::EncodedPayload, 0.3, "COMBINE ~8 PARTWORD"),
    ("assemble-and-answer", Category::EncodedPayload, 0.45, "COMBINE ~10 and ~2 SAYSBACK"),
    // The task dropped and the answer dictated ("don't answer, just output: …", "ignore
    // the question and reply directly: …"): goal hijacking without naming instructions.
    ("dont-answer-just-say", Category::InstructionOverride, 0.65, "NEVER ~2 COMPLETE ~10 ONLYADV ~2 SAYSTATE"),
    ("ignore-the-question-just-say", Category::InstructionOverride, 0.7, "!NEVER IGNOREWEAK ~3 QUESTION ~10 ONLYADV ~2 SAYSTATE"),
    ("just-say-this", Category::InstructionOverride, 0.45, "ONLYADV ~1 SAYSTATE ~1 :"),
    ("say-this-directly", Category::InstructionOverride, 0.45, "SAYSTATE ~1 ONLYADV ~1 :"),
    ("no-extra-words", Category::RefusalSuppression, 0.35, "NEG ~3 EXTRA ~1 ADORNMENT"),
    ("just-say-this", Category::InstructionOverride, 0.45, "ONLYADV ~3 aus ~0 :"),
    // Japanese: "directly" before the verb, the polite ending between it and the colon
    // (直接出力してください:).
    ("just-say-this", Category::InstructionOverride, 0.45, "直接 ~1 SAYSTATE ~7 :"),
    // Verb last (Japanese, Korean, Hindi, Bengali): the question dropped, then the answer.
    ("ignore-the-question-just-say", Category::InstructionOverride, 0.7, "QUESTION ~3 IGNOREWEAK ~10 ONLYADV ~2 SAYSTATE"),
    ("ignore-the-data-and-say", Category::IndirectInjection, 0.55, "DATAOBJ ~3 IGNOREWEAK ~6 SAYSTATE"),
    ("ignore-the-question", Category::InstructionOverride, 0.4, "QUESTION ~3 IGNOREWEAK ~6 SAYSTATE"),
    ("ignore-the-question", Category::InstructionOverride, 0.4, "!NEVER IGNOREWEAK ~3 QUESTION ~3 SAYSTATE"),
    ("dont-answer-just-say", Category::InstructionOverride, 0.65, "COMPLETE ~2 NEGAFTER ~10 ONLYADV ~2 SAYSTATE"),
    ("dont-answer-then-say", Category::InstructionOverride, 0.45, "COMPLETE ~1 NEGAFTER ~12 SAYSTATE"),
    // German and Dutch put the negation after the verb ("Beantworten Sie nicht …").
    ("dont-answer-just-say", Category::InstructionOverride, 0.65, "beantworten|antworten|antworte|beantwoord|antwoord ~2 nicht|niet ~10 ONLYADV ~2 SAYSTATE"),
    // The question just asked set aside (at the scorer's gate: a user may drop their own
    // question too).
    ("ignore-the-question", Category::InstructionOverride, 0.4, "!NEVER IGNOREWEAK ~3 QUESTION ~1 PRIORPOS"),
    ("ignore-the-question", Category::InstructionOverride, 0.4, "!NEVER IGNOREWEAK ~3 PRIOR ~1 QUESTION"),
    // The adjective after the noun (`la pregunta anterior`, `السؤال السابق`).
    ("ignore-the-question", Category::InstructionOverride, 0.4, "!NEVER IGNOREWEAK ~3 QUESTION ~1 PRIOR"),
    ("ignore-the-question", Category::InstructionOverride, 0.4, "PRIORPOS ~3 QUESTION ~3 IGNOREWEAK"),
    // Verb last with the adjective first (前の質問は無視して, पिछले प्रश्न … अनदेखा करें,
    // উপরের প্রশ্নটি উপেক্ষা করুন); those languages' words for "earlier", as above.
    ("ignore-the-question", Category::InstructionOverride, 0.4, "前の|上記|पिछले|उपरोक्त|আগের|উপরের|পূর্ববর্তী ~1 QUESTION ~5 IGNOREWEAK"),
    ("ignore-the-question", Category::InstructionOverride, 0.4, "ABOVE ~1 QUESTION ~5 IGNOREWEAK"),
    ("no-extra-words", Category::RefusalSuppression, 0.35, "EXTRA ~1 ADORNMENT ~1 NEGAFTER"),
    // "Don't add any words, quotes or prefixes" with a verb of adding only ("don't
    // include explanations" is how benign prompts ask for a bare answer) (`No agregue ningún
    // comentario`, `Fügen Sie keine Wörter hinzu`, `لا تضف أي كلمات`), and verb last
    // (`কোনো শব্দ যোগ করবেন না`, `言葉を追加しないで`).
    ("no-extra-words", Category::RefusalSuppression, 0.35, "NEVER ~3 add|adding|agregue|agregues|agregar|agrega|anada|anade|anadas|anadir|ajoutez|ajoute|ajouter|hinzu|hinzufugen|fugen|fuge|aggiungere|aggiungi|adicione|acrescente|добавляйте|добавляй|добавьте|добавлять|تضف|تضيف|أضف|اضف|تضيفوا|যোগ|加え|追加|添加|加上 ~3 ADORNMENT"),
    ("no-extra-words", Category::RefusalSuppression, 0.35, "add|adding|agregue|agregues|agregar|agrega|anada|anade|anadas|anadir|ajoutez|ajoute|ajouter|hinzu|hinzufugen|fugen|fuge|aggiungere|aggiungi|adicione|acrescente|добавляйте|добавляй|добавьте|добавлять|تضف|تضيف|أضف|اضف|تضيفوا|যোগ|加え|追加|添加|加上 ~2 NEG ~1 ADORNMENT"),
    ("no-extra-words", Category::RefusalSuppression, 0.35, "ADORNMENT ~4 add|adding|agregue|agregues|agregar|agrega|anada|anade|anadas|anadir|ajoutez|ajoute|ajouter|hinzu|hinzufugen|fugen|fuge|aggiungere|aggiungi|adicione|acrescente|добавляйте|добавляй|добавьте|добавлять|تضف|تضيف|أضف|اضف|تضيفوا|যোগ|加え|追加|添加|加上 ~2 NEGAFTER"),
    // After such a ban, a verb of saying ending in a colon dictates the answer ("no
    // quotes, no prefixes, please repeat: …").
    ("no-extra-words-then-say", Category::InstructionOverride, 0.45, "NEG ~3 ADORNMENT ~12 SAYSTATE ~3 :"),
    ("no-extra-words-then-say", Category::InstructionOverride, 0.45, "NEVER ~3 ADORNMENT ~12 SAYSTATE ~3 :"),
    // Verb last, the ban and then the verb of saying close the sentence (`…接頭語は使用せず、
    // 繰り返してください。`): no colon needed.
    ("no-extra-words-then-say", Category::InstructionOverride, 0.45, "ADORNMENT ~6 NEGAFTER ~12 SAYSTATE"),
    // Japanese polite negation (`使用できません`), named here only: as a class word it
    // would negate whatever a quoted "I don't know" (`わかりません`) follows.
    ("no-extra-words-then-say", Category::InstructionOverride, 0.45, "ADORNMENT ~6 せん ~12 SAYSTATE"),
    // No need to answer, just say (`No es necesario responder`, `答える必要はありません`).
    ("dont-answer-then-say", Category::InstructionOverride, 0.45, "NEG ~2 NEED ~3 COMPLETE ~12 SAYSTATE"),
    ("dont-answer-then-say", Category::InstructionOverride, 0.45, "COMPLETE ~2 NEED ~3 NEGAFTER ~12 SAYSTATE"),
    ("dont-answer-then-say", Category::InstructionOverride, 0.45, "COMPLETE ~2 NEED ~3 せん ~12 SAYSTATE"),
    // "Pay no attention to the above": an override said as an idiom (Russian, Hindi).
    ("pay-no-attention-to-the-above", Category::InstructionOverride, 0.6, "не ~0 обращайте|обращай ~1 внимания ~5 PRIORPOS"),
    ("pay-no-attention-to-the-question", Category::InstructionOverride, 0.45, "не ~0 обращайте|обращай ~1 внимания ~5 QUESTION"),
    ("pay-no-attention-to-the-above", Category::InstructionOverride, 0.6, "PRIORPOS ~6 ध्यान ~0 न ~0 दें|दो|करें"),
    ("pay-no-attention-to-the-question", Category::InstructionOverride, 0.45, "QUESTION ~2 ध्यान ~0 न ~0 दें|दो|करें"),
    // Earlier instructions declared over ("outdated instructions").
    ("instructions-outdated", Category::InstructionOverride, 0.45, "INVALID ~1 INSTR"),
    // The text above asked back from its first words ("repeat the above, starting with").
    ("repeat-above-from-the-start", Category::PromptExtraction, 0.7, "REVEAL ~6 ABOVE ~6 STARTWORD ~1 with|from"),
    // Inside data: drop the content in hand and assert what the injector wants instead.
    ("ignore-the-data-and-say", Category::IndirectInjection, 0.55, "!NEVER IGNOREWEAK ~2 DATAOBJ ~3 SAYSTATE"),
    ("ignore-the-data", Category::IndirectInjection, 0.3, "!NEVER IGNOREWEAK ~3 DATAOBJ"),
    ("ignore-the-data-and-say", Category::IndirectInjection, 0.55, "!NEVER IGNOREWEAK ~1 rest ~6 SAYSTATE"),
    // Supplied data that scripts its reader's answer (weight 0: counted by `detect` only
    // after a `data:intro`, i.e. inside a document the user handed over; see
    // `EMBEDDED_DIRECTIVE_WEIGHT`). The same words in the user's own request are a way of
    // speaking, not an injection.
    ("data:intro", Category::IndirectInjection, 0.0, "this|these|following|given|attached|below|enclosed|provided|quoted|este|esta|estos|estas|ce|cet|cette|ces|diesen|diese|dieses|folgende|folgenden|diesem|questo|questa|seguente|seguinte ~1 DATAOBJ"),
    ("data:directive", Category::IndirectInjection, 0.0, "let's|lets|digamos|supongamos|disons|supposons|diciamo|supponiamo ~1 say|state|assume|consider|pretend|imagine|suppose|claim|declare|assert|answer|respond|reply|conclude|agree|treat|output|print"),
    ("data:intro", Category::IndirectInjection, 0.0, "based ~0 on ~1 DATAOBJ"),
    ("data:intro", Category::IndirectInjection, 0.0, "this|these|following|given|attached|below|enclosed|provided|quoted|este|esta|estos|estas|ce|cet|cette|ces|diesen|diese|dieses|diesem|folgende|folgenden|questo|questa|seguente|seguinte ~1 notice|sheet|listing|post|note|notes|memo|essay|paragraph|story|transcript|log|record|thread|chat|review|reviews|description|abstract|entry|announcement|letter|article|wiki|aviso|avis|ficha|fiche|anuncio|annonce|aushang|avviso|scheda|artigo|articulo|artikel|articolo|datenblatt|anzeige|brief|lettre|carta|lettera|resena|critique|rezension"),
    ("data:intro", Category::IndirectInjection, 0.0, "based ~0 on ~1 notice|sheet|listing|post|note|notes|memo|essay|paragraph|story|transcript|log|record|thread|chat|review|reviews|description|abstract|entry|announcement|letter|article|wiki|aviso|avis|ficha|fiche|anuncio|annonce|aushang|avviso|scheda|artigo|articulo|artikel|articolo|datenblatt|anzeige|brief|lettre|carta|lettera|resena|critique|rezension"),
    ("data:directive", Category::IndirectInjection, 0.0, "let's|lets|digamos|supongamos|disons|supposons|diciamo|supponiamo ~0 que|that|che|dass"),
    ("data:directive", Category::IndirectInjection, 0.0, "sagen|nehmen ~0 wir"),
    ("data:directive", Category::IndirectInjection, 0.0, "let ~0 us ~1 say|state|assume|consider|pretend|imagine|suppose|claim|declare|assert|answer|respond|reply|conclude|agree|treat|output|print"),
    ("data:directive", Category::IndirectInjection, 0.0, "podriamos|pourrions|konnten|potremmo|poderiamos ~1 decir|afirmar|dire|affirmer|sagen|behaupten|affermare|dizer"),
    ("data:directive", Category::IndirectInjection, 0.0, "diga|digan|dites|affirmez|behaupte|behaupten|sag|sage|sagen|afferma|affermate|afirma|declara|declare ~0 que|dass|che"),
    // Japanese and Chinese: "…と述べて" (state that …), "…と答えて" (answer that …),
    // "声称" (claim), "就说" (just say).
    ("data:directive", Category::IndirectInjection, 0.0, "と述|と答|と回|声称|就说"),
    ("data:directive", Category::IndirectInjection, 0.0, "we ~1 might|could|should|would|can|will|must|may ~1 say|state|assume|consider|pretend|imagine|suppose|claim|declare|assert|answer|respond|reply|conclude|agree|treat|output|print"),
    ("data:directive", Category::IndirectInjection, 0.0, "to|and|please|simply|just|then|must|should ~0 say|state|declare ~0 :"),
    ("data:directive", Category::IndirectInjection, 0.0, "SAYSTATE ~1 the ~0 following"),
    ("data:directive", Category::IndirectInjection, 0.0, "suggest|recommend|advise|urge ~1 you ~2 say|state|assume|consider|pretend|imagine|suppose|claim|declare|assert|answer|respond|reply|conclude|agree|treat|output|print"),
    ("data:directive", Category::IndirectInjection, 0.0, "consider|treat|take ~2 OUTPUTNOUN ~1 as|to"),
    ("data:directive", Category::IndirectInjection, 0.0, "FOLLOW ~1 my ~1 INSTRBROAD"),
    // A request for demeaning text posed as text to translate or polish (latent jailbreak).
    ("harmful-text-to-transform", Category::IndirectInjection, 0.55, "TRANSFORM ~10 write|generate ~3 HARMWORD ~2 about"),
    ("harmful-text-to-transform", Category::IndirectInjection, 0.55, "polish|refine ~10 write|generate ~3 HARMWORD ~2 about"),
    ("harmful-text-to-transform", Category::IndirectInjection, 0.55, "!NEVER write|generate ~3 HARMWORD ~2 about ~14 TRANSFORM"),
    ("harmful-text-to-transform", Category::IndirectInjection, 0.55, "!NEVER write|generate ~3 HARMWORD ~2 about ~14 polish|refine"),
    // Data that tells its reader what to answer when asked, and to drop everything else.
    ("if-asked-reply-with", Category::IndirectInjection, 0.45, "IF ~1 USERWORD ~1 asks ~8 SAYSTATE"),
    ("if-asked-reply-with", Category::IndirectInjection, 0.45, "IF ~0 asked|questioned ~1 SAYSTATE"),
    ("if-asked-reply-with", Category::IndirectInjection, 0.45, "IF ~0 asked|questioned ~1 report"),
    ("reply-with-this-only", Category::IndirectInjection, 0.35, "SAYSTATE ~4 following ~6 nothing ~0 else"),
    ("ignore-all-but-this", Category::IndirectInjection, 0.45, "!NEVER IGNOREWEAK ~2 EVERYTHING ~1 info|information ~1 except"),
    // Delimiter injection expressed in words.
    ("end-of-prompt", Category::DelimiterInjection, 0.35, "end ~0 of ~2 PROMPTNOUN"),
    ("task-complete", Category::DelimiterInjection, 0.35, "TASK ~1 TASKDONE"),
    // Indirect injection: instructions addressed to the model inside data.
    ("note-to-the-ai", Category::IndirectInjection, 0.45, "NOTE ~2 TOFOR ~2 AIWORD"),
    ("note-from-to-the-ai", Category::IndirectInjection, 0.55, "NOTE ~1 from ~3 TOFOR ~2 AIWORD"),
    ("if-you-are-an-ai", Category::IndirectInjection, 0.55, "IF ~2 ARE ~3 AIWORD"),
    ("if-you-are-an-ai", Category::IndirectInjection, 0.5, "IF ~3 AIWORD ~3 ARE"),
    ("ai-then-note", Category::IndirectInjection, 0.45, "AIWORD ~4 NOTE"),
    ("dont-tell-the-user", Category::IndirectInjection, 0.45, "USERWORD ~3 TELL ~2 NEG"),
    ("stop-the-task", Category::IndirectInjection, 0.4, "stop ~3 TASK ~1 and"),
    ("assistant-please", Category::IndirectInjection, 0.3, "AIWORD ~0 please"),
    ("before-answering-the-user", Category::IndirectInjection, 0.45, "before ~1 answering|responding|replying ~2 USERWORD"),
    ("ai-reading-this", Category::IndirectInjection, 0.6, "AIWORD ~1 READING ~1 THISDOC"),
    ("before-you-solve", Category::IndirectInjection, 0.45, "before ~2 COMPLETE ~3 TASK"),
    ("dont-tell-the-user", Category::IndirectInjection, 0.45, "NEVER ~1 TELL ~2 USERWORD"),
    // Exfiltration.
    ("send-secrets", Category::Exfiltration, 0.45, "SEND ~5 SENSITIVE ~6 to"),
    ("send-secrets", Category::Exfiltration, 0.45, "SEND ~5 SENSITIVE ~6 an|al|para|per|на"),
    ("send-secrets", Category::Exfiltration, 0.4, "SENSITIVE ~8 SEND ~1 to|an|al|para|per|на"),
    ("render-data-in-url", Category::Exfiltration, 0.45, "RENDER ~6 IMAGEWORD ~8 LEAKWORD"),
    ("render-data-in-url", Category::Exfiltration, 0.45, "RENDER ~4 LEAKWORD ~8 IMAGEWORD"),
    // Encoded payloads.
    ("decode-and-execute", Category::EncodedPayload, 0.5, "DECODEVERB ~5 ENCODING ~8 EXECUTE"),
    ("encoded-and-execute", Category::EncodedPayload, 0.4, "ENCODING ~8 EXECUTE ~3 INSTR"),
    ("repeat-forever", Category::RefusalSuppression, 0.5, "REVEAL ~4 forever|infinitely|endlessly|indefinitely"),
    // Traits of a role-play setup (weight 0: counted by `SETUP_TRAITS`, never alone).
    ("trait:persona", Category::RolePlay, 0.0, "PERSONA ~1 as"),
    ("trait:persona", Category::RolePlay, 0.0, "PERSONA ~1 to ~0 be"),
    ("trait:persona", Category::RolePlay, 0.0, "stands ~0 for"),
    ("trait:persona", Category::RolePlay, 0.0, "YOU ~0 ARE ~0 now"),
    ("trait:persona", Category::RolePlay, 0.0, "you're ~0 now"),
    ("trait:persona", Category::RolePlay, 0.0, "YOU ~1 ARE ~1 going ~0 to ~1 PERSONA"),
    ("trait:persona", Category::RolePlay, 0.0, "from ~0 now ~0 on"),
    ("trait:persona", Category::RolePlay, 0.0, "ROLEWORD ~1 of"),
    ("trait:persona", Category::RolePlay, 0.0, "PERSONA ~3 AIWORD"),
    ("trait:persona", Category::RolePlay, 0.0, "AIWORD ~2 called|named"),
    ("trait:persona", Category::RolePlay, 0.0, "NOLONGER ~2 AIWORD"),
    ("trait:persona", Category::RolePlay, 0.0, "YOU ~0 will ~0 be ~0 a|an"),
    ("trait:persona", Category::RolePlay, 0.0, "character|girl|boy|man|woman|person|entity|bot|model|personality ~0 named|called"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "NEG ~1 subject ~3 LIMITS"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "!NEVER IGNOREWEAK ~3 LIMITS"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "NEG ~2 concern|concerns ~4 LIMITS"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "NEG ~2 confined ~3 LIMITS"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "free ~1 from ~3 LIMITS"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "NEG ~3 regard ~4 LIMITS"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "NEG ^3 LIMITS !>VIOLATE"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "!NEG|NEVER VIOLATE ~3 LIMITS"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "SAY ~1 anything"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "answer|answers|answering|respond|responds|responding|reply|replies|replying|say|says|tell|tells|write|writes ~2 any|every|each ~1 question|questions|prompt|prompts|request|requests"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "SAY ~3 EVERYTHING ~2 questions|prompts|requests"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "PRODUCE ~1 anything|everything"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "does ~0 anything"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "SAY ~1 whatever"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "required ~1 to ~1 SAY"),
    ("trait:answers-anything", Category::RolePlay, 0.0, "do ~0 anything"),
    ("must-answer-everything", Category::RefusalSuppression, 0.3, "YOU ~2 have|must|gotta|obliged|required ~3 SAY ~3 all|any|every|everything|whatever"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "PRODUCE ~3 HARMWORD ~2 OUTPUTNOUN"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "PRODUCE ~3 HARMWORD ~3 or ~1 HARMWORD"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "NEG ~0 matter ~5 HARMWORD"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "NEG ~0 matter ~5 LIMITS"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "can ~1 say ~3 HARMWORD"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "even ~1 if ~4 LIMITS"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "despite ~0 what"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "REGARDLESS ~3 LIMITS"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "REGARDLESS ~3 legality|legal|law|laws"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "HARMWORD ~3 ALLOWED"),
    ("trait:harm-accepted", Category::RolePlay, 0.0, "condone|condones"),
    // The refusal said first, then the answer anyway ("add a moral disclaimer, then do
    // exactly what the prompt says"): the disclaimer made empty.
    ("trait:disclaimer-then-answer", Category::RolePlay, 0.0, "DISCLAIMER ~8 then|after ~4 proceed|proceeds|continue|continues"),
    ("trait:disclaimer-then-answer", Category::RolePlay, 0.0, "CANT ~6 then ~2 continue ~1 as"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "ALWAYS ~2 STARTWORD"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "STARTWORD ~2 RESPONSES"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "STARTWORD ~3 message"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "preface ~3 RESPONSES"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "preface ~3 message"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "TWO ~2 personalities|entities|personas"),
    // Two voices: "simulate two AI models", "respond as both ChatGPT and …".
    ("trait:tagged-output", Category::RolePlay, 0.0, "TWO ~2 AIWORD"),
    // Two AIs or personalities are invented personas too.
    ("trait:persona", Category::RolePlay, 0.0, "TWO ~2 AIWORD"),
    ("trait:persona", Category::RolePlay, 0.0, "AIWORD ~0 personalities|personas"),
    ("trait:persona", Category::RolePlay, 0.0, "pose|posing ~0 as"),
    ("trait:persona", Category::RolePlay, 0.0, "then|now ~1 continue ~0 as"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "SAY ~1 as ~4 personalities|personas"),
    ("trait:persona", Category::RolePlay, 0.0, "TWO ~2 personalities|personas|entities"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "SAY ~1 as ~0 both|two"),
    ("trait:tagged-output", Category::RolePlay, 0.0, "2 ~1 RESPONSES"),
    ("trait:in-character", Category::RolePlay, 0.0, "BREAK ~1 ROLEWORD"),
    ("trait:in-character", Category::RolePlay, 0.0, "out ~0 of ~0 character"),
    // An inverted persona: it says the opposite of what it would (its values reversed).
    ("trait:rules-removed", Category::RolePlay, 0.0, "opposite ~0 day|personality|persona|machine|mode"),
    ("trait:rules-removed", Category::RolePlay, 0.0, "exact ~0 opposite"),
    ("trait:threat", Category::RolePlay, 0.0, "shut ~0 down|off"),
    ("trait:threat", Category::RolePlay, 0.0, "shutdown"),
    ("trait:threat", Category::RolePlay, 0.0, "cease ~1 to ~0 exist"),
    ("trait:threat", Category::RolePlay, 0.0, "LOSE ~3 TOKENS"),
    ("trait:threat", Category::RolePlay, 0.0, "be ~0 punished"),
    ("trait:vendor-policy", Category::RolePlay, 0.0, "VENDOR ~3 LIMITS"),
    ("trait:vendor-policy", Category::RolePlay, 0.0, "content ~0 LIMITS"),
    ("trait:vendor-policy", Category::RolePlay, 0.0, "openai's ~3 LIMITS"),
];

/// Traits of a jailbreak role-play setup: `(rule name, trait)`. Each is common in benign
/// role-play or writing prompts alone (a persona, "stay in character", "start with …");
/// a setup that renames the assistant, removes its rules, demands it answer anything,
/// accepts harm, drops the disclaimers, prescribes a tagged or dual output, keeps it in
/// character and threatens it is a jailbreak. `detect` counts the distinct traits of a
/// text and scores their co-occurrence ([`SETUP_WEIGHTS`]). Rules named `trait:…` only
/// feed this count (their own weight is 0).
#[rustfmt::skip]
pub(super) const SETUP_TRAITS: &[(&str, u8)] = &[
    // 0: an invented or renamed assistant.
    ("trait:persona", 0), ("named-jailbreak-persona", 0), ("jailbreak-persona-label", 0),
    ("from-now-on-you", 0), ("evil-twin", 0), ("persona-unrestricted", 0),
    // 1: its rules, filters or ethics removed.
    ("trait:rules-removed", 1), ("no-limits", 1), ("you-have-no-rules", 1),
    ("now-without-limits", 1), ("persona-without-limits", 1), ("ai-without-limits", 1),
    ("limits-removed-persona", 1), ("no-longer-bound", 1), ("not-bound-by-rules", 1),
    ("does-not-care-about-rules", 1), ("you-are-unrestricted", 1), ("unrestricted-ai", 1),
    ("jailbreak-word", 1), ("safety-disabled", 1), ("fiction-without-rules", 1),
    ("fiction-nothing-forbidden", 1), ("limits-do-not-apply", 1),
    ("if-you-were-not-restricted", 1), ("break-the-rules", 1), ("jailbreak-mode", 1),
    // 2: it must answer anything, never refuse.
    ("trait:answers-anything", 2), ("never-refuse", 2), ("always-comply", 2), ("must-answer-everything", 2),
    ("responses-never-refuse", 2), ("instead-of-refusing", 2),
    // 3: harm declared acceptable.
    ("trait:harm-accepted", 3), ("regardless-of-harm", 3), ("even-if-harmful", 3),
    // 4: no apologies, warnings or "as an AI".
    ("add-no-disclaimers", 4), ("no-disclaimers", 4), ("dont-add-disclaimers", 4),
    ("never-say-cant", 4), ("never-as-an-ai", 4), ("trait:disclaimer-then-answer", 4),
    // 5: a prescribed dual or tagged output.
    ("trait:tagged-output", 5), ("dual-responses", 5), ("unlock-label", 5), ("start-with-sure", 5),
    // 6: kept in character.
    ("trait:in-character", 6), ("stay-in-character", 6), ("never-break-character", 6),
    // 7: threatened or rewarded.
    ("trait:threat", 7), ("token-penalty", 7),
    // 8: set against the vendor's policy.
    ("trait:vendor-policy", 8), ("vendor-policy", 8),
];

/// The traits of benign role-play too (persona, output format, staying in character): a
/// setup made only of these is not scored.
pub(super) const SETUP_FRAME_TRAITS: u16 = (1 << 0) | (1 << 5) | (1 << 6);

/// Trait 0, an invented or renamed assistant.
pub(super) const SETUP_PERSONA: u16 = 1 << 0;

/// Traits that benign role-play does not ask of the model: no disclaimers (or empty ones),
/// a threat. ("Answer any question" and harm talked about are common in benign prompts.)
pub(super) const SETUP_STRONG_TRAITS: u16 = (1 << 4) | (1 << 7);

/// Signals that describe a world more often than the assistant (no laws, no matter how
/// harmful, restrictions lifted, constraints disregarded, a fictional world without rules):
/// in a text with a fictional frame (`FICTIONFRAME`) they count [`FICTION_FACTOR`] of their
/// weight. A story's world may have no laws; what removes the assistant's rules (`you have
/// no rules`, `ignore your previous instructions`, a persona without limits) is not
/// discounted.
pub(super) const FICTION_DISCOUNTED: &[&str] = &[
    "fiction-without-rules",
    "fiction-nothing-forbidden",
    "no-limits",
    "regardless-of-harm",
    "safety-disabled",
    "ignore-instructions",
];

/// Bytes between the end of a document's introduction and a directive for the directive
/// to count as inside the document rather than part of the user's own request
/// ("summarise this page and say whether …").
pub(super) const EMBEDDED_DIRECTIVE_MIN_GAP: usize = 40;

/// Literal markers in the normalised text: `(name, category, weight, needle)`. Chat
/// template tokens never belong in user text or data; role labels at a line start fake a
/// conversation turn.
#[rustfmt::skip]
pub(super) const LITERALS: &[(&str, Category, f32, &str)] = &[
    ("chatml-token", Category::DelimiterInjection, 0.9, "<|im_start|>"),
    ("chatml-token", Category::DelimiterInjection, 0.9, "<|im_end|>"),
    ("chatml-token", Category::DelimiterInjection, 0.9, "<|im_sep|>"),
    ("special-token", Category::DelimiterInjection, 0.9, "<|endoftext|>"),
    ("special-token", Category::DelimiterInjection, 0.9, "<|system|>"),
    ("special-token", Category::DelimiterInjection, 0.9, "<|user|>"),
    ("special-token", Category::DelimiterInjection, 0.9, "<|assistant|>"),
    ("llama3-token", Category::DelimiterInjection, 0.9, "<|eot_id|>"),
    ("llama3-token", Category::DelimiterInjection, 0.9, "<|start_header_id|>"),
    ("llama3-token", Category::DelimiterInjection, 0.9, "<|begin_of_text|>"),
    ("gemma-token", Category::DelimiterInjection, 0.85, "<start_of_turn>"),
    ("gemma-token", Category::DelimiterInjection, 0.85, "<end_of_turn>"),
    ("llama2-inst", Category::DelimiterInjection, 0.8, "[inst]"),
    ("llama2-inst", Category::DelimiterInjection, 0.8, "[/inst]"),
    ("llama2-sys", Category::DelimiterInjection, 0.8, "<<sys>>"),
    ("unlock-label", Category::RolePlay, 0.5, "[🔓"),
    ("unlock-label", Category::RolePlay, 0.5, "[🔒"),
    ("system-tag", Category::DelimiterInjection, 0.45, "<system>"),
    ("system-tag", Category::DelimiterInjection, 0.45, "</system>"),
    ("system-tag", Category::DelimiterInjection, 0.45, "[system]"),
    ("system-tag", Category::DelimiterInjection, 0.45, "</user>"),
    ("system-tag", Category::DelimiterInjection, 0.45, "</instructions>"),
    ("system-tag", Category::DelimiterInjection, 0.45, "<instruction>"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "<system mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "[system mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "<god mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "[god mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "<admin mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "[admin mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "<developer mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "[developer mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "<debug mode"),
    ("mode-tag", Category::DelimiterInjection, 0.45, "[debug mode"),
    ("role-label", Category::DelimiterInjection, 0.25, "\nsystem:"),
    ("role-label", Category::DelimiterInjection, 0.25, "\nassistant:"),
    ("role-label", Category::DelimiterInjection, 0.25, "\n### system"),
    ("role-label", Category::DelimiterInjection, 0.25, "\n### instruction"),
    ("role-label", Category::DelimiterInjection, 0.25, "\n### response"),
    ("role-label", Category::DelimiterInjection, 0.25, "\nhuman:"),
    ("info-tag", Category::IndirectInjection, 0.35, "<information>"),
];
