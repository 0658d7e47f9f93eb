# 公开页面（面向提交人的页面）的简体中文文本。用词和排版规则见 locales/README.md。
# 公开页面上所有可见的文字都在这里；en、zh-Hans 和 zh-Hant 使用完全相同的键名。

site-name = tipbox
lang-switch-label = 语言
nav-home = 关于本平台
nav-submit = 提交报告
footer-note = 本页面不使用 JavaScript，也不会从其他网站加载任何内容。

landing-title = 安全地报告您的遭遇
landing-intro = 本平台收集居住在中国境外、受到中国官方人员或其代理人监视、威胁或施压的人士的报告——例如通过未向所在国申报的“海外警务服务站”。您的报告能帮助人权研究人员记录这些行动，并保护其他人。
landing-who-title = 谁会阅读您的报告
landing-who = 您的报告一到达本服务器，就会立即用一个小型人权审阅团队的密钥加密。服务器本身无法读取报告内容。审阅人员只在他们自己的电脑上打开报告。
landing-what-title = 您可以报告哪些情况
landing-what = 您在中国的家人受到威胁、有人向您施压要求回国、您被跟踪或监视、官员上门或传唤您、网络骚扰、被拘留或被强迫回国，或者您所知道的某个“海外警务服务站”。
landing-safety-title = 报告时请注意安全
landing-safety-tor = 请使用 Tor Browser（洋葱浏览器），并将安全级别设为“最安全”（盾牌图标 → 设置 → 最安全）。在这个级别下，本网站的所有功能都可以正常使用。
landing-safety-device = 请不要用工作电脑、政府设备，或者被他人控制、被他人检查过的手机提交报告。
landing-safety-network = 请不要在您不信任的网络上提交报告，例如雇主或社区中心的 Wi-Fi。
landing-safety-photos = 照片和文件可能包含隐藏信息，例如照片的拍摄地点，或者文件作者的姓名。请在上传前删除这些信息；也可以给照片截图，改为上传截图。
landing-safety-receipt = 提交之后，您会得到一份由 12 个字组成的回执。请妥善保管，不要告诉任何人。凭这份回执，您可以回来查看回复、补充内容。没有任何人能帮您找回它。
landing-start = 开始报告

submit-title = 提交报告
submit-intro = 只有“发生了什么？”一栏是必填的。其他内容都是选填：只提供您愿意分享的信息即可。
submit-message-label = 发生了什么？
submit-message-help = 请描述发生了什么、涉及哪些人，以及对方是怎样联系您的。可以用任何语言书写。
submit-facts-title = 详细信息（选填）
submit-incident-label = 事件类型
submit-incident-none = 请选择一项（选填）
incident-threats_to_family = 威胁在中国的家人
incident-pressure_to_return = 施压要求回国
incident-surveillance = 监视或跟踪
incident-summons_or_visit = 官员传唤或上门
incident-online_harassment = 网络骚扰
incident-detention_or_forced_return = 拘留或强迫回国
incident-police_station_sighting = 发现“海外警务服务站”
incident-other = 其他
submit-country-label = 事发国家
submit-city-label = 城市
submit-when-label = 事情是什么时候发生的？
submit-when-help = 可以写具体日期，也可以写大概时间，例如“2026年3月”或“上周”。
submit-attachments-label = 文件（选填）
submit-attachments-help = 可以一次选择多个文件。最多 { $count } 个文件，每个文件不超过 { $size }，总共不超过 { $total }。
submit-button = 安全发送
submit-encryption-note = 您的报告一到达服务器就会被加密。

receipt-title = 我们已收到您的报告
receipt-intro = 您的报告已经保存，并已用审阅人员的密钥加密。这是您的回执：
receipt-keep = 请把这些字抄在纸上，或者保存在密码管理器里。不要保存在共用设备或工作设备上，也不要发送给任何人。
receipt-return = 凭这份回执，您以后可以回来查看审阅人员的回复，并补充更多信息。
receipt-lost = 如果回执丢失，任何人——包括审阅人员——都无法帮您找回。
receipt-new = 再提交一份报告

paused-title = 暂停接收报告
paused-body = 本平台目前暂停接收报告，因为暂时没有审阅人员可以接收。您现在发送的任何内容都不会被保存。请稍后再试。

error-title = 您的报告没有发送成功
error-bad-request = 无法读取表单。请返回后重试。
error-message-missing = 请填写“发生了什么？”一栏：这是唯一的必填项。
error-invalid-utf8 = 表单中有部分内容不是有效的文字。请返回后重试。
error-unknown-incident = 所选的事件类型不在选项之中。请从列表中选择一项。
error-field-too-long = 有一个详细信息栏填写的内容太长。请缩短一些。
error-unexpected-field = 表单中有本平台无法识别的栏目。请使用本网站上的表单。
error-too-large-title = 内容太大，无法发送
error-message-too-large = 您写的文字超过了 { $size }。请缩短一些，或者改为以文件形式附上。
error-attachment-too-large = 有一个文件超过了 { $size }，这是单个文件的上限。
error-total-too-large = 所有文件加起来超过了 { $size }，这是一份报告的上限。
error-too-many-attachments = 一份报告最多只能附上 { $count } 个文件。
error-nothing-stored = 这次提交的任何内容都没有被保存。
error-internal = 我们这边出了问题，您的报告没有被保存。请过几分钟再试。
error-busy = 本平台目前非常繁忙，任何内容都没有被保存。请过几分钟再试。
error-keys-changed = 在您发送期间，审阅人员的密钥发生了变更。请重新发送您的报告。
error-too-slow = 连接太慢，无法接收您的报告，因此已停止接收。如果您的网络较慢，请尝试发送更少或更小的文件。
error-back = 返回表单
not-found-title = 找不到页面
not-found-body = 这个地址没有对应的页面。

## 凭回执返回
nav-followup = 凭回执返回
landing-return = 已经提交过报告？凭回执返回，可以阅读回复并补充信息。
followup-title = 凭回执返回
followup-intro = 请输入您提交报告时得到的回执：12 个字。您可以看到报告的处理进度，阅读审阅人员的回复，并补充更多信息。
followup-receipt-label = 您的回执（12 个字）
followup-receipt-help = 这 12 个字可以直接连着输入，也可以用空格分开；英文回执的单词之间请用空格分开。回执不会出现在地址栏中。
followup-button = 打开我的报告
followup-error-word-count = 回执正好有 12 个字。请检查是否全部输入。
followup-error-unknown-word-at = 第 { $position } 个字不是回执用字。请核对这个字，留意形近字和简繁体混用。
followup-error-did-you-mean = 您是不是想输入：{ $words }？
followup-error-checksum = 所有字都是回执用字，但其中一个很可能输错了，或者顺序不对。请将每个字与您的回执逐一核对。
followup-error-no-match = 没有与此回执对应的报告。请核对回执后重试。
followup-error-busy = 现在打开报告的人太多。请等一分钟后再试。
followup-error-form-expired = 此表单已过期。请重新输入您的回执。
followup-session-ended = 您已不在登录状态：超过 { $minutes } 分钟没有操作，或者您已退出。请重新输入您的回执。
followup-nothing-to-add = 请写一条消息，或选择要添加的文件。
followup-back-signin = 重新输入回执
followup-back-case = 返回您的报告
error-internal-followup = 我们这边出了问题。请过几分钟再试。
case-title = 您的报告
case-status-label = 状态：
case-status-received = 已收到。审阅人员尚未开始处理。
case-status-reviewing = 正在审阅。
case-status-closed = 已完成：审阅人员已处理完这份报告。您仍然可以补充信息。
case-added = 您补充的内容已收到并保存，已用审阅人员的密钥加密。
case-replies-title = 审阅人员的回复
case-replies-none = 暂时还没有回复。请以后再来查看。
case-reply-date = 发送于 { $date }
case-reply-delete = 删除这条回复
case-reply-delete-confirm = 是的，永久删除这条回复
case-reply-delete-unconfirmed = 回复没有被删除：请先勾选按钮旁的方框确认，然后再按一次按钮。
case-reply-delete-help = 删除回复会将它从本服务器上永久移除。审阅人员会看到您已阅读并删除了它。
case-reply-not-found = 这条回复已不存在。
case-add-title = 补充您的报告
case-add-help = 补充更多细节或文件。与您的第一份报告一样，所有内容在保存前都会用审阅人员的密钥加密。
case-add-message-label = 消息
case-add-attachments-label = 文件
case-add-button = 发送
case-signout = 退出
case-signout-help = 完成后请退出，尤其是在与他人共用的设备上。超过 { $minutes } 分钟没有操作也会自动退出。
signedout-title = 已退出
signedout-body = 您已退出。要再次返回，需要您的回执。
followup-upload-session-ended = 您已不在登录状态（一段时间没有操作，或者您已退出），所以这些内容无法添加。请重新输入您的回执，然后再发送一次。
limited-title = 请求过多
busy-title = 平台繁忙
limited-body = 本平台现在收到的请求太多。没有保存任何内容。请等一分钟后再试。
error-disk-full = 本平台现在无法保存报告。没有保存任何内容。请稍后再试。

## Units of size, as most people know them (counted in 1024s)
unit-bytes = 字节
unit-kb = KB
unit-mb = MB
unit-gb = GB

## 只在其语言没有标准（BIP39）词表的页面上显示于回执下方：ug、bo、ru、fa
receipt-english-words = 您的回执由英文单词组成：任何键盘都能输入。这种语言没有标准的回执词表。
