# 公開頁面（供提交人使用的頁面）的繁體中文文字。用詞和排版規則見 locales/README.md。
# 公開頁面上所有看得到的文字都在這裡；en、zh-Hans 和 zh-Hant 使用完全相同的鍵名。

site-name = tipbox
lang-switch-label = 語言
nav-home = 關於本平台
nav-submit = 提交報告
footer-note = 本頁面不使用 JavaScript，也不會從其他網站載入任何內容。

landing-title = 安全地報告您的遭遇
landing-intro = 本平台收集住在中國境外、遭到中國官方人員或其代理人監視、威脅或施壓的人士所提出的報告——例如透過未向所在國申報的「海外警務服務站」。您的報告能協助人權研究人員記錄這些行動，並保護其他人。
landing-who-title = 誰會閱讀您的報告
landing-who = 您的報告一送達本伺服器，就會立即以一個小型人權審閱團隊的金鑰加密。伺服器本身無法讀取報告內容。審閱人員只會在自己的電腦上開啟報告。
landing-what-title = 您可以報告哪些情況
landing-what = 您在中國的家人受到威脅、有人向您施壓要您回國、您遭到跟蹤或監視、官員登門拜訪或傳喚您、網路騷擾、遭到拘留或被迫回國，或是您所知道的某個「海外警務服務站」。
landing-safety-title = 報告時請注意安全
landing-safety-tor = 請使用 Tor Browser（洋蔥瀏覽器），並將安全性等級設為「最安全」（盾牌圖示 → 設定 → 最安全）。在這個等級下，本網站的所有功能都能正常使用。
landing-safety-device = 請勿使用公司電腦、政府設備，或是受他人控制、曾被他人檢查過的手機提交報告。
landing-safety-network = 請勿在您不信任的網路上提交報告，例如雇主或社區中心的 Wi-Fi。
landing-safety-photos = 照片和文件可能含有隱藏資訊，例如照片的拍攝地點，或是文件作者的姓名。請在上傳前移除這些資訊；也可以將照片截圖，改為上傳截圖。
landing-safety-receipt = 提交之後，您會取得一份由 12 個字組成的回執。請妥善保管，不要告訴任何人。憑這份回執，您可以回來查看回覆、補充內容。沒有任何人能幫您找回它。
landing-start = 開始報告

submit-title = 提交報告
submit-intro = 只有「發生了什麼事？」一欄是必填的。其他內容都是選填：只需提供您願意分享的資訊。
submit-message-label = 發生了什麼事？
submit-message-help = 請描述發生了什麼事、牽涉到哪些人，以及對方是如何與您聯絡的。可以使用任何語言書寫。
submit-facts-title = 詳細資料（選填）
submit-incident-label = 事件類型
submit-incident-none = 請選擇一項（選填）
incident-threats_to_family = 威脅在中國的家人
incident-pressure_to_return = 施壓要求回國
incident-surveillance = 監視或跟蹤
incident-summons_or_visit = 官員傳喚或登門拜訪
incident-online_harassment = 網路騷擾
incident-detention_or_forced_return = 拘留或被迫回國
incident-police_station_sighting = 發現「海外警務服務站」
incident-other = 其他
submit-country-label = 事發國家
submit-city-label = 城市
submit-when-label = 事情是什麼時候發生的？
submit-when-help = 可以填寫確切日期，也可以填寫大概的時間，例如「2026年3月」或「上星期」。
submit-attachments-label = 檔案（選填）
submit-attachments-help = 可以一次選取多個檔案。最多 { $count } 個檔案，每個檔案不超過 { $size }，總共不超過 { $total }。
submit-button = 安全送出
submit-encryption-note = 您的報告一送達伺服器就會被加密。

receipt-title = 我們已收到您的報告
receipt-intro = 您的報告已經儲存，並已使用審閱人員的金鑰加密。這是您的回執：
receipt-keep = 請把這些字抄寫在紙上，或是存放在密碼管理工具裡。不要儲存在共用裝置或公司裝置上，也不要傳送給任何人。
receipt-return = 憑這份回執，您日後可以回來查看審閱人員的回覆，並補充更多資訊。
receipt-lost = 如果遺失回執，任何人——包括審閱人員——都無法幫您找回。
receipt-new = 再提交一份報告

paused-title = 暫停接收報告
paused-body = 本平台目前暫停接收報告，因為暫時沒有審閱人員可以接收。您現在送出的任何內容都不會被儲存。請稍後再試。

error-title = 您的報告沒有送出
error-bad-request = 無法讀取表單。請返回後再試一次。
error-message-missing = 請填寫「發生了什麼事？」一欄：這是唯一的必填項目。
error-invalid-utf8 = 表單中有部分內容不是有效的文字。請返回後再試一次。
error-unknown-incident = 所選的事件類型不在選項之中。請從清單中選擇一項。
error-field-too-long = 有一個詳細資料欄位的內容太長。請縮短一些。
error-unexpected-field = 表單中有本平台無法辨識的欄位。請使用本網站上的表單。
error-too-large-title = 內容太大，無法送出
error-message-too-large = 您寫的文字超過了 { $size }。請縮短一些，或是改用檔案形式附上。
error-attachment-too-large = 有一個檔案超過了 { $size }，這是單一檔案的上限。
error-total-too-large = 所有檔案加起來超過了 { $size }，這是一份報告的上限。
error-too-many-attachments = 一份報告最多只能附上 { $count } 個檔案。
error-nothing-stored = 這次提交的任何內容都沒有被儲存。
error-internal = 我們這邊出了問題，您的報告沒有被儲存。請過幾分鐘再試。
error-busy = 本平台目前非常繁忙，任何內容都沒有被儲存。請過幾分鐘再試。
error-keys-changed = 在您傳送期間，審閱人員的金鑰發生了變更。請重新傳送您的報告。
error-too-slow = 連線太慢，無法接收您的報告，因此已停止接收。如果您的網路較慢，請嘗試傳送更少或更小的檔案。
error-back = 返回表單
not-found-title = 找不到頁面
not-found-body = 這個網址沒有對應的頁面。

## 憑回執返回
nav-followup = 憑回執返回
landing-return = 已經提交過報告？憑回執返回，可以閱讀回覆並補充資訊。
followup-title = 憑回執返回
followup-intro = 請輸入您提交報告時得到的回執：12 個字。您可以看到報告的處理進度，閱讀審閱人員的回覆，並補充更多資訊。
followup-receipt-label = 您的回執（12 個字）
followup-receipt-help = 這 12 個字可以直接連續輸入，也可以用空格分開；英文回執的單字之間請用空格分開。回執不會出現在網址列中。
followup-button = 打開我的報告
followup-error-word-count = 回執正好有 12 個字。請檢查是否全部輸入。
followup-error-unknown-word-at = 第 { $position } 個字不是回執用字。請核對這個字，留意字形相近的字和簡繁體混用。
followup-error-did-you-mean = 您是不是要輸入：{ $words }？
followup-error-checksum = 所有字都是回執用字，但其中一個很可能輸錯了，或是順序不對。請將每個字與您的回執逐一核對。
followup-error-no-match = 沒有與此回執對應的報告。請核對回執後再試一次。
followup-error-busy = 現在打開報告的人太多。請等一分鐘後再試。
followup-error-form-expired = 此表單已過期。請重新輸入您的回執。
followup-session-ended = 您已不在登入狀態：超過 { $minutes } 分鐘沒有操作，或者您已登出。請重新輸入您的回執。
followup-nothing-to-add = 請寫一則訊息，或選擇要新增的檔案。
followup-back-signin = 重新輸入回執
followup-back-case = 返回您的報告
error-internal-followup = 我們這邊出了問題。請過幾分鐘再試。
case-title = 您的報告
case-status-label = 狀態：
case-status-received = 已收到。審閱人員尚未開始處理。
case-status-reviewing = 正在審閱。
case-status-closed = 已完成：審閱人員已處理完這份報告。您仍然可以補充資訊。
case-added = 您補充的內容已收到並儲存，已用審閱人員的金鑰加密。
case-replies-title = 審閱人員的回覆
case-replies-none = 暫時還沒有回覆。請以後再來查看。
case-reply-date = 發送於 { $date }
case-reply-delete = 刪除這則回覆
case-reply-delete-confirm = 是的，永久刪除這則回覆
case-reply-delete-unconfirmed = 回覆沒有被刪除：請先勾選按鈕旁的方框確認，然後再按一次按鈕。
case-reply-delete-help = 刪除回覆會將它從本伺服器上永久移除。審閱人員會看到您已閱讀並刪除了它。
case-reply-not-found = 這則回覆已不存在。
case-add-title = 補充您的報告
case-add-help = 補充更多細節或檔案。與您的第一份報告一樣，所有內容在儲存前都會用審閱人員的金鑰加密。
case-add-message-label = 訊息
case-add-attachments-label = 檔案
case-add-button = 發送
case-signout = 登出
case-signout-help = 完成後請登出，尤其是在與他人共用的裝置上。超過 { $minutes } 分鐘沒有操作也會自動登出。
signedout-title = 已登出
signedout-body = 您已登出。要再次返回，需要您的回執。
followup-upload-session-ended = 您已不在登入狀態（一段時間沒有操作，或者您已登出），所以這些內容無法新增。請重新輸入您的回執，然後再發送一次。
limited-title = 請求過多
busy-title = 平台繁忙
limited-body = 本平台現在收到的請求太多。沒有儲存任何內容。請等一分鐘後再試。
error-disk-full = 本平台現在無法儲存報告。沒有儲存任何內容。請稍後再試。

## Units of size, as most people know them (counted in 1024s)
unit-bytes = 位元組
unit-kb = KB
unit-mb = MB
unit-gb = GB

## 只在其語言沒有標準（BIP39）詞表的頁面上顯示於回執下方：ug、bo、ru、fa
receipt-english-words = 您的回執由英文單字組成：任何鍵盤都能輸入。這種語言沒有標準的回執詞表。
